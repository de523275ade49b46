"""Failures a retry cannot fix: a job that refuses the lake's data exits with ``DATA_EXIT_CODE``.

One started with bad arguments exits with ``USAGE_EXIT_CODE`` (``session.JobArgumentParser``); both codes are
in ``include/job_exits.py``, which the operator reads too. Anything else (S3 or Spark trouble, a day another run
holds or has not cleaned yet, a lease lost while writing) keeps the usual exit code 1 and is retried.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Sequence

from include.job_exits import DATA_EXIT_CODE

# Spark's error conditions for a raw line that does not parse under its schema, and for the clean job's own
# ``raise_error`` on a line without its record key: the raw files never change, so neither does the outcome.
_DATA_CONDITIONS = ("[MALFORMED_RECORD_IN_PARSING", "[USER_RAISED_EXCEPTION]")
# Spark 4's wrapper of an error met reading a file names it: "… while reading file s3a://…/part-0.jsonl.  SQLSTATE"
_READ_FILE = re.compile(r"\[FAILED_READ_FILE[^\]]*\] Encountered error while reading file (\S+?)\.?(?:\s|$)")

log = logging.getLogger("spark_jobs")


class RefusedDataError(Exception):
    """The lake holds data this job refuses: retrying the job reads the same data and fails the same way."""


def refuses_data(error: BaseException) -> bool:
    """Whether ``error`` comes from data the job refuses (its own check, or Spark's parse of a raw line)."""
    return isinstance(error, RefusedDataError) or any(condition in str(error) for condition in _DATA_CONDITIONS)


def refusal_summary(error: BaseException) -> str:
    """The line of ``error`` that says what was refused (a Java error's text holds its whole stack trace), and the
    file Spark was reading when it says so."""
    text = str(error)
    lines = text.splitlines()
    summary = next(
        (line.strip() for line in lines if any(c in line for c in _DATA_CONDITIONS)), lines[0] if lines else ""
    )
    read = _READ_FILE.search(text)
    return f"{summary} (reading {read.group(1)})" if read else summary


def run_job(main: Callable[[Sequence[str]], None], argv: Sequence[str]) -> None:
    """Run a job's ``main``; exit with ``DATA_EXIT_CODE`` when it refuses the lake's data."""
    try:
        main(argv)
    except Exception as error:
        if not refuses_data(error):
            raise
        log.error("refused the lake's data, a retry cannot change it: %s", refusal_summary(error))
        sys.exit(DATA_EXIT_CODE)
