"""Failures a retry cannot fix, and the exit codes that tell Airflow so.

spark-submit (in client mode) exits with the driver's exit code, so a job that refuses the lake's data exits
with ``DATA_EXIT_CODE`` and one started with bad arguments with ``USAGE_EXIT_CODE`` (the ``sysexits.h``
values). ``plugins/lake_spark.py`` fails such a task at once instead of retrying it for minutes. Anything
else (S3 or Spark trouble, a day another run holds or has not cleaned yet) keeps the usual exit code 1 and
is retried.

This module imports neither pyspark nor Airflow: both sides use it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

USAGE_EXIT_CODE = 64
DATA_EXIT_CODE = 65
PERMANENT_EXIT_CODES = {
    USAGE_EXIT_CODE: "the job's arguments are wrong",
    DATA_EXIT_CODE: "the lake holds data the job refuses (its log says which); only draining the day again changes it",
}
# Spark's error conditions for a raw line that does not parse under its schema, and for the clean job's own
# ``raise_error`` on a line without its record key: the raw files never change, so neither does the outcome.
_DATA_CONDITIONS = ("[MALFORMED_RECORD_IN_PARSING", "[USER_RAISED_EXCEPTION]")

log = logging.getLogger("spark_jobs")


class RefusedDataError(Exception):
    """The lake holds data this job refuses: retrying the job reads the same data and fails the same way."""


def refuses_data(error: BaseException) -> bool:
    """Whether ``error`` comes from data the job refuses (its own check, or Spark's parse of a raw line)."""
    return isinstance(error, RefusedDataError) or any(condition in str(error) for condition in _DATA_CONDITIONS)


def refusal_summary(error: BaseException) -> str:
    """The line of ``error`` that says what was refused (a Java error's text holds its whole stack trace)."""
    lines = str(error).splitlines()
    return next((line.strip() for line in lines if any(c in line for c in _DATA_CONDITIONS)), lines[0] if lines else "")


def run_job(main: Callable[[Sequence[str]], None], argv: Sequence[str]) -> None:
    """Run a job's ``main``; exit with ``DATA_EXIT_CODE`` when it refuses the lake's data."""
    try:
        main(argv)
    except Exception as error:
        if not refuses_data(error):
            raise
        log.error("refused the lake's data, a retry cannot change it: %s", refusal_summary(error))
        sys.exit(DATA_EXIT_CODE)
