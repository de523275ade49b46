"""Cleaning job: raw/<entity>/dt=<date>/ (files listed by its manifest) -> clean/<entity>/dt=<date>/ (Parquet).

Usage: ``spark-submit --py-files lake.zip spark_jobs/clean.py --date 2026-11-25 --bucket pinterest-lake``
(``--entity pin geo`` limits the entities; ``--lake-root file:///…`` reads a local lake instead of s3a).
Rerunning a date overwrites only that date's clean partitions, so a retry converges on the same output. A day is
cleaned only when the quality gate passed its manifest as it is now (``_dq.json``, ``manifest.gate_refusal``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from include.backfill import clear_clean_command
from include.lake import DQ_NAME, SOURCE_NAME, SUCCESS_NAME, partition_prefix
from include.records import ENTITIES, Entity
from spark_jobs.cleaning import clean
from spark_jobs.failures import run_job
from spark_jobs.lake_fs import delete, file_sizes, read_text, write_text
from spark_jobs.lease import Lease, check_rows_stored, day_leases, withdrawn_if_lost
from spark_jobs.manifest import (
    REDRAIN,
    ChangedRawDataError,
    DrainedAgainError,
    Manifest,
    UngatedDataError,
    checked_run_replaced,
    gate_refusal,
    read_manifest,
    source_json,
)
from spark_jobs.schemas import raw_line_reader, raw_line_schema
from spark_jobs.session import Lake, build_session, lake_argument_parser

log = logging.getLogger("spark_jobs.clean")


def read_raw_partition(spark: SparkSession, lake: Lake, entity: Entity, manifest: Manifest) -> DataFrame:
    """The raw lines of one drained partition of ``entity``, from exactly the files its manifest lists."""
    schema = raw_line_schema(entity)
    if not manifest.keys:
        return spark.createDataFrame([], schema)
    urls = [lake.url(key) for key in manifest.keys]
    return raw_line_reader(spark, entity).json(urls)


def check_raw_sizes(spark: SparkSession, lake: Lake, prefix: str, manifest: Manifest) -> None:
    """Raise ChangedRawDataError unless every file the manifest lists is there at the size it gives (one listing).

    The gate checked the files when the drain had written them; this catches an object changed since.
    """
    if not manifest.keys:
        return
    found = file_sizes(spark, lake.url(prefix))
    for key, size in zip(manifest.keys, manifest.sizes or (None,) * len(manifest.keys), strict=True):
        name = key.rsplit("/", 1)[-1]
        if name not in found or (size is not None and found[name] != size):
            now = "missing" if name not in found else f"{found[name]} bytes"
            said = "lists it" if size is None else f"says {size} bytes"
            refusal = f"not cleaning {lake.url(key)}: it is {now}, its manifest {said}"
            raise_if_drained_again(spark, lake, prefix, manifest, refusal)
            raise ChangedRawDataError(f"{refusal} (changed after the drain); {REDRAIN}")


def raise_if_drained_again(spark: SparkSession, lake: Lake, prefix: str, manifest: Manifest, refusal: str) -> None:
    """Raise DrainedAgainError when another run committed a new manifest of the day since ``manifest`` was read: the
    raw objects a drain no longer lists are removed after its manifest is committed, so the job read a day being
    replaced, not one changed behind the drain's back."""
    now = read_manifest(spark, lake.url(prefix), prefix)
    if now.sha256 != manifest.sha256 and now.run_id != manifest.run_id:
        raise DrainedAgainError(f"{refusal}: drain run {now.run_id!r} drained the day again since; retry to read it")


def gated_manifest(spark: SparkSession, lake: Lake, entity: Entity, day: date) -> Manifest:
    """The raw partition's manifest, once the quality gate's report says it passed this very manifest.

    Raises DrainedAgainError when the report is of a manifest another drain run has replaced since (that run's gate
    comes next: a retry), UngatedDataError otherwise (a refusal: the gate ran before this job, and a retry would
    read the same report).
    """
    raw = partition_prefix("raw", entity, day)
    manifest = read_manifest(spark, lake.url(raw), raw)
    report = read_text(spark, lake.url(raw + DQ_NAME))
    refusal = gate_refusal(report, manifest)
    if refusal is None:
        return manifest
    if (checked := checked_run_replaced(report, manifest)) is not None:
        raise DrainedAgainError(
            f"not cleaning {entity} of {day} ({lake.url(raw)}) yet: the quality gate checked the manifest of drain "
            f"run {checked!r}, which drain run {manifest.run_id!r} has replaced since; a retry cleans the day once "
            "that run's gate has passed it"
        )
    raise UngatedDataError(f"not cleaning {entity} of {day} ({lake.url(raw)}): {refusal}")


def clean_partition(
    spark: SparkSession, lake: Lake, entity: Entity, day: date, lease: Lease, run: tuple[str, int]
) -> str:
    """Clean one entity's day and overwrite its clean partition; returns the partition's URL.

    ``_source.json`` goes in last, after Spark's ``_SUCCESS``: it names the raw manifest the partition was
    cleaned from, so the analytics can tell a day drained again since (``spark_jobs.readiness``), and the ``run``
    (id, try) that cleaned it. Before it, the raw lines read must be the manifest's count and the rows stored
    those written (another run's late files refused). The lease is renewed before the Parquet, after it and after
    ``_source.json``: it fails when another run has taken the day meanwhile, and after a write it withdraws
    ``_SUCCESS`` and ``_source.json`` first (``withdrawn_if_lost``).
    """
    manifest = gated_manifest(spark, lake, entity, day)
    log.info("raw %s %s: manifest %s, %d files", entity, day, manifest.status, len(manifest.keys))
    check_raw_sizes(spark, lake, partition_prefix("raw", entity, day), manifest)
    target = lake.url(partition_prefix("clean", entity, day))
    read, written = Observation(f"raw {entity} {day}"), Observation(f"clean {entity} {day}")
    raw = read_raw_partition(spark, lake, entity, manifest).observe(read, F.count(F.lit(1)).alias("lines"))
    lease.renew()
    raw.transform(clean(entity)).observe(written, F.count(F.lit(1)).alias("rows")).write.mode("overwrite").parquet(
        target
    )
    redo = f"{clear_clean_command(day, day)} (a manual run's spark_clean: clear it with its downstream tasks in the UI)"
    markers = [target + SUCCESS_NAME, target + SOURCE_NAME]
    with withdrawn_if_lost(spark, markers, redo):
        lease.renew()
    if manifest.lines is not None and read.get["lines"] != manifest.lines:
        check_lines(spark, lake, entity, day, manifest, target)
    check_rows_stored(spark, target, written.get["rows"], [target + SUCCESS_NAME])
    write_text(spark, target + SOURCE_NAME, source_json(manifest, datetime.now(UTC), *run))
    with withdrawn_if_lost(spark, markers, redo):  # a pause between the check and the write: withdrawn, not trusted
        lease.renew()
    log.info("clean %s written", target)
    return target


def check_lines(spark: SparkSession, lake: Lake, entity: Entity, day: date, manifest: Manifest, target: str) -> None:
    """Raise ChangedRawDataError, after deleting the clean folder's ``_SUCCESS``, unless the raw files hold the
    manifest's lines. Called when the count observed while cleaning differs: a stage Spark ran again (a lost
    executor) counts twice there, so the lines are counted once more by themselves before the day is refused."""
    lines = read_raw_partition(spark, lake, entity, manifest).count()
    if lines == manifest.lines:
        return
    delete(spark, target + SUCCESS_NAME)
    refusal = f"not cleaning {entity} of {day}: its raw files hold {lines} lines, its manifest says {manifest.lines}"
    raise_if_drained_again(spark, lake, partition_prefix("raw", entity, day), manifest, refusal)
    raise ChangedRawDataError(f"{refusal} (changed after the drain); {target} is left without _SUCCESS; {REDRAIN}")


def argument_parser() -> argparse.ArgumentParser:
    """The job's arguments: the lake's, and the entities to clean."""
    parser = lake_argument_parser("Clean one day of raw records into Parquet.")
    parser.add_argument("--entity", nargs="+", choices=ENTITIES, default=list(ENTITIES), help="entities to clean")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = argument_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lake = Lake(bucket=args.bucket, root=args.lake_root)
    entities = [entity for entity in ENTITIES if entity in args.entity]  # one order for every job: no deadlock
    jobs = {entity: f"clean-{entity}" for entity in entities}
    with day_leases(lake, list(jobs.values()), args.date, args.run_id, args.attempt, args.lease_wait) as leases:
        spark = build_session(f"clean {args.date}")
        for entity in entities:
            clean_partition(spark, lake, entity, args.date, leases[jobs[entity]], (args.run_id, args.attempt))


if __name__ == "__main__":
    run_job(main, sys.argv[1:])
