"""The one place a job builds its SparkSession, and where lake keys become URLs."""

from __future__ import annotations

import argparse
import sys
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import NoReturn

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from include.job_exits import USAGE_EXIT_CODE
from include.lake import s3a_url

# Settings these jobs rely on; values given to spark-submit (--conf, spark-defaults.conf) win over them. No master:
# spark-submit's --master (the spark_default connection: spark://… in docker-compose) is the one, local[*] without.
DEFAULT_CONF: dict[str, str] = {
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}
# Set on every session, over any cluster default: the lake's days and years are UTC (docs/spark.md).
FORCED_CONF: dict[str, str] = {"spark.sql.session.timeZone": "UTC"}
LEASE_WAIT_SECONDS = 3600.0  # how long a job waits by default for a day another run is writing (spark_jobs/lease.py)


def build_session(app_name: str) -> SparkSession:
    """The job's SparkSession: spark-submit's settings, the platform defaults for the rest, and ``FORCED_CONF``.

    A session already running in this process (a test's, a notebook's) is reused, with ``FORCED_CONF`` set.
    """
    session = SparkSession.getActiveSession() or _new_session(app_name)
    for key, value in FORCED_CONF.items():
        session.conf.set(key, value)
    return session


def _new_session(app_name: str) -> SparkSession:
    """A session from spark-submit's settings, with ``DEFAULT_CONF`` for what they leave out."""
    # Connect to the JVM first (spark-submit's, or a new one): before that a SparkConf is an empty Python dict, and
    # every default would override what spark-submit was given, its --master included.
    SparkContext._ensure_initialized()
    builder = SparkSession.builder.appName(app_name)
    for key, value in DEFAULT_CONF.items():
        if not _submitted(key):
            builder = builder.config(key, value)
    return builder.getOrCreate()


def _submitted(key: str) -> bool:
    """Whether whoever started this JVM set ``key`` (spark-submit's --conf, spark-defaults.conf; with no JVM yet,
    nothing was)."""
    return SparkContext._jvm is not None and SparkConf().contains(key)


@dataclass(frozen=True)
class Lake:
    """Where the lake is: ``s3a://<bucket>`` by default, or another Hadoop URL root (``file:///…``)."""

    bucket: str
    root: str | None = None

    def url(self, key: str) -> str:
        """URL of a lake key (from ``include.lake``) as Spark reads it."""
        if self.root is None:
            return s3a_url(self.bucket, key)
        return f"{self.root.rstrip('/')}/{key}"


def iso_date(text: str, flag: str = "--date") -> date:
    """argparse type of ``--date`` (or another ``flag``): an ISO day such as ``2026-11-25``."""
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{flag} must be YYYY-MM-DD, got {text!r}") from error


def iso_datetime(text: str) -> datetime:
    """argparse type of ``--logical-date``: an ISO 8601 time with its offset, such as ``2026-11-25T00:00:00+00:00``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--logical-date must be an ISO 8601 time, got {text!r}") from error
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--logical-date must carry its UTC offset, got {text!r}")
    return moment


def wait_seconds(text: str) -> float:
    """argparse type of ``--lease-wait``: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"--lease-wait must be a number of seconds, 0 or more, got {text!r}")
    return value


def try_number(text: str) -> int:
    """argparse type of ``--attempt``: an Airflow try, 1 or more (the publication records it)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--attempt must be an Airflow try number, 1 or more, got {text!r}")
    return value


class JobArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors exit with ``USAGE_EXIT_CODE``, which Airflow does not retry."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE_EXIT_CODE, f"{self.prog}: error: {message}\n")


def lake_argument_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the arguments every job takes: the day and where the lake is."""
    parser = JobArgumentParser(description=description)
    parser.add_argument("--date", required=True, type=iso_date, help="the UTC day (YYYY-MM-DD)")
    parser.add_argument("--bucket", required=True, help="lake bucket, read as s3a://<bucket>/")
    parser.add_argument(
        "--lake-root", default=None, help="URL root used instead of s3a://<bucket> (e.g. file:///tmp/lake)"
    )
    parser.add_argument(
        "--run-id",
        default=f"manual-{uuid.uuid4().hex[:12]}",
        help="who holds the day's lease while the job writes (the Airflow run id; by default one of its own)",
    )
    parser.add_argument("--attempt", type=try_number, default=1, help="the Airflow try of that run (a lease's try)")
    parser.add_argument(
        "--lease-wait",
        type=wait_seconds,
        default=LEASE_WAIT_SECONDS,
        metavar="SECONDS",
        help=f"how long to wait for the day while another run writes it (default {LEASE_WAIT_SECONDS:.0f})",
    )
    return parser
