"""Cleaning job: raw/<entity>/dt=<date>/ (files listed by its manifest) -> clean/<entity>/dt=<date>/ (Parquet).

Usage: ``spark-submit --py-files lake.zip spark_jobs/clean.py --date 2026-11-25 --bucket pinterest-lake``
(``--entity pin geo`` limits the entities; ``--lake-root file:///…`` reads a local lake instead of s3a).
Rerunning a date overwrites only that date's clean partitions, so a retry converges on the same output. A day is
cleaned only when the quality gate passed its manifest as it is now (``_dq.json``, ``manifest.gate_refusal``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, SparkSession

from include.lake import DQ_NAME, SOURCE_NAME, SUCCESS_NAME, partition_prefix
from include.records import ENTITIES, Entity
from spark_jobs.cleaning import clean
from spark_jobs.failures import run_job
from spark_jobs.lake_fs import read_text, write_text
from spark_jobs.lease import Lease, job_lease, withdrawn_if_lost
from spark_jobs.manifest import Manifest, UngatedDataError, gate_refusal, read_manifest, source_json
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


def gated_manifest(spark: SparkSession, lake: Lake, entity: Entity, day: date) -> Manifest:
    """The raw partition's manifest, once the quality gate's report says it passed this very manifest.

    Raises UngatedDataError otherwise (a refusal: the gate runs before this job, so a retry reads the same report).
    """
    raw = partition_prefix("raw", entity, day)
    manifest = read_manifest(spark, lake.url(raw), raw)
    refusal = gate_refusal(read_text(spark, lake.url(raw + DQ_NAME)), manifest)
    if refusal is not None:
        raise UngatedDataError(f"not cleaning {entity} of {day} ({lake.url(raw)}): {refusal}")
    return manifest


def clean_partition(
    spark: SparkSession, lake: Lake, entity: Entity, day: date, lease: Lease, run: tuple[str, int]
) -> str:
    """Clean one entity's day and overwrite its clean partition; returns the partition's URL.

    ``_source.json`` goes in last, after Spark's ``_SUCCESS``: it names the raw manifest the partition was
    cleaned from, so the analytics can tell a day drained again since (``analytics.readiness``), and the ``run``
    (id, try) that cleaned it. The lease is renewed right before each write and after the Parquet: it fails when
    another run has taken the day meanwhile, and after the Parquet it withdraws ``_SUCCESS`` and ``_source.json``
    first (``withdrawn_if_lost``).
    """
    manifest = gated_manifest(spark, lake, entity, day)
    log.info("raw %s %s: manifest %s, %d files", entity, day, manifest.status, len(manifest.keys))
    target = lake.url(partition_prefix("clean", entity, day))
    lines = read_raw_partition(spark, lake, entity, manifest).transform(clean(entity))
    lease.renew()
    lines.write.mode("overwrite").parquet(target)
    with withdrawn_if_lost(spark, [target + SUCCESS_NAME, target + SOURCE_NAME]):
        lease.renew()
    write_text(spark, target + SOURCE_NAME, source_json(manifest, datetime.now(UTC), *run))
    log.info("clean %s written", target)
    return target


def main(argv: Sequence[str] | None = None) -> None:
    parser = lake_argument_parser("Clean one day of raw records into Parquet.")
    parser.add_argument("--entity", nargs="+", choices=ENTITIES, default=list(ENTITIES), help="entities to clean")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lake = Lake(bucket=args.bucket, root=args.lake_root)
    spark = build_session(f"clean {args.date}")
    for entity in args.entity:
        with job_lease(spark, lake, f"clean-{entity}", args.date, args.run_id, args.attempt) as lease:
            clean_partition(spark, lake, entity, args.date, lease, (args.run_id, args.attempt))


if __name__ == "__main__":
    run_job(main, sys.argv[1:])
