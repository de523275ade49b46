"""The lease a Spark job holds on its day while it writes, so two runs never overwrite the same partition at once.

Spark's overwrite deletes the folder and then commits each task's files: two jobs writing one folder at the same
time (two runs of a day, or a retry next to a try Airflow gave up on whose spark-submit still runs) can leave a
mix of both with ``_SUCCESS``. The jobs therefore take the same lease as the drain (``include.drain.lock``): in
S3, under ``_locks/<job>/dt=<day>/``, renewed while they run. A second writer waits for the lease
(``--lease-wait``, an hour by default: an analytics run over a long history outlasts Airflow's retries), then
fails with PartitionLockedError naming the holder, and Airflow retries it later. The jobs call ``renew()`` right
before each write (it fails with LockLostError when the lease is no longer theirs), and leaving the lease raises
LockLostError when it was lost meanwhile: the job fails and its retry writes the day again. A local lake
(``--lake-root file://…``, for tests and benchmarks) has no lease.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any, Protocol

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from include.drain.errors import LockLostError
from include.drain.lock import PartitionLock
from include.lake import job_lock_key
from include.settings import S3_CLIENT_CONFIG
from spark_jobs.lake_fs import delete
from spark_jobs.session import Lake

LEASE_TTL_SECONDS = 120.0

log = logging.getLogger(__name__)


class MixedWriteError(RuntimeError):
    """A folder read back holds other rows than this job wrote: another run wrote it at the same time (retried)."""


class Lease(Protocol):
    """What a job does with its lease while it holds it."""

    def renew(self) -> None:
        """Extend the lease; raise LockLostError when it is no longer this job's."""


class NoLease:
    """The lease of a local lake: there is none, so there is nothing to renew."""

    def renew(self) -> None:
        """Nothing to renew."""


def lease_s3_client() -> Any:
    """A boto3 S3 client for the endpoint and region s3a is given, read before the job's session starts; credentials
    from the environment, as s3a's.

    A session already running in this process (a test's) gives its Hadoop settings; otherwise they are spark-submit's
    ``--conf`` values, which its JVM holds before any SparkContext exists.
    """
    import boto3
    from botocore.config import Config

    active = SparkSession.getActiveSession()
    if active is not None:
        hadoop = active.sparkContext._jsc.hadoopConfiguration()
        endpoint, region = hadoop.get("fs.s3a.endpoint"), hadoop.get("fs.s3a.endpoint.region")
    else:
        SparkContext._ensure_initialized()  # connect to spark-submit's JVM: its --conf values are system properties
        conf = SparkConf()
        endpoint, region = conf.get("spark.hadoop.fs.s3a.endpoint"), conf.get("spark.hadoop.fs.s3a.endpoint.region")
    return boto3.client(
        "s3", endpoint_url=endpoint or None, region_name=region or None, config=Config(**S3_CLIENT_CONFIG)
    )


@contextlib.contextmanager
def day_leases(
    lake: Lake, jobs: Sequence[str], day: date, owner: str, attempt: int, wait_seconds: float
) -> Iterator[dict[str, Lease]]:
    """Hold the lease on each of ``jobs``' ``day`` while the body runs (none for a local lake), taken in the order
    given and before the body starts its session: a job waiting for a lease holds no cluster cores, on which the
    holder may be waiting. The wait, up to ``wait_seconds``, is one for all of them."""
    if lake.root is not None:
        yield dict.fromkeys(jobs, NoLease())
        return
    s3 = lease_s3_client()
    started = time.monotonic()
    with contextlib.ExitStack() as held:
        leases: dict[str, Lease] = {}
        for job in jobs:
            key = job_lock_key(job, day)
            leases[job] = held.enter_context(
                PartitionLock(s3, lake.bucket, key, owner, LEASE_TTL_SECONDS, attempt, wait_seconds, started)
            )
        yield leases


@contextlib.contextmanager
def withdrawn_if_lost(spark: SparkSession, markers: Sequence[str], redo: str) -> Iterator[None]:
    """Delete ``markers`` (what makes a day count as written) when the body finds the lease lost, then re-raise.

    A renewal that fails after a write means the write may have landed after another run took the day over (this
    job was paused longer than the lease): Spark then commits its files next to the other run's, so the folder can
    hold both. The day must then read as not written until a run writes it again: this task's retry, or, when
    this job was a try that a later one has replaced (nothing retries it then), ``redo``, the command logged.
    """
    try:
        yield
    except LockLostError:
        for marker in markers:
            delete(spark, marker)
        log.error(
            "withdrew %s: this job's last write may have landed after it lost the lease. A retry of this task writes "
            "the day again; if a later try or run has already finished it (nothing retries this one then): %s",
            ", ".join(markers),
            redo,
        )
        raise


def check_rows_stored(spark: SparkSession, url: str, rows: int, markers: Sequence[str]) -> None:
    """Raise MixedWriteError, after deleting ``markers``, unless the Parquet folder at ``url`` holds ``rows`` rows
    (read from the files' footers): more means a paused run's late commit landed next to this job's files."""
    stored = spark.read.parquet(url).count()
    if stored != rows:
        for marker in markers:
            delete(spark, marker)
        raise MixedWriteError(
            f"{url} holds {stored} rows where this job wrote {rows} (another run's write landed next to this one): "
            "withdrawn; a retry writes the day again"
        )
