"""Cleaning job: raw/<entity>/dt=<date>/ (files listed by its manifest) -> clean/<entity>/dt=<date>/ (Parquet).

Usage: ``spark-submit --py-files lake.zip spark_jobs/clean.py --date 2026-11-25 --bucket pinterest-lake``
(``--entity pin geo`` limits the entities; ``--lake-root file:///…`` reads a local lake instead of s3a).
Rerunning a date overwrites only that date's clean partitions, so a retry converges on the same output.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame, SparkSession

from include.lake import partition_prefix
from include.records import ENTITIES, Entity
from spark_jobs.cleaning import clean
from spark_jobs.manifest import read_manifest
from spark_jobs.schemas import raw_line_schema
from spark_jobs.session import Lake, build_session, lake_argument_parser

log = logging.getLogger("spark_jobs.clean")


def read_raw_partition(spark: SparkSession, lake: Lake, entity: Entity, day: date) -> DataFrame:
    """The raw lines of one drained partition (``_SUCCESS`` present), from exactly the files its manifest lists."""
    prefix = partition_prefix("raw", entity, day)
    manifest = read_manifest(spark, lake.url(prefix), prefix)
    log.info("raw %s: manifest %s, %d files", prefix, manifest.status, len(manifest.keys))
    schema = raw_line_schema(entity)
    if not manifest.keys:
        return spark.createDataFrame([], schema)
    urls = [lake.url(key) for key in manifest.keys]
    return spark.read.schema(schema).option("mode", "FAILFAST").json(urls)


def clean_partition(spark: SparkSession, lake: Lake, entity: Entity, day: date) -> str:
    """Clean one entity's day and overwrite its clean partition; returns the partition's URL."""
    target = lake.url(partition_prefix("clean", entity, day))
    read_raw_partition(spark, lake, entity, day).transform(clean(entity)).write.mode("overwrite").parquet(target)
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
        clean_partition(spark, lake, entity, args.date)


if __name__ == "__main__":
    main(sys.argv[1:])
