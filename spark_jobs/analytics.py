"""Analytics job: as of a date, over all clean data up to and including it -> analytics/<name>/dt=<date>/.

Usage: ``spark-submit --py-files lake.zip spark_jobs/analytics.py --date 2026-11-25 --bucket pinterest-lake``.
Each result overwrites only its own ``dt=<date>`` partition; records cleaned on several days count once
(the latest ingested).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import date

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from include.lake import dataset_prefix, partition_prefix
from include.records import KEY_FIELD, Entity
from spark_jobs.cleaning import LATEST_BY, Transform, keep_latest
from spark_jobs.queries import USED_COLUMNS, all_results
from spark_jobs.session import Lake, build_session, lake_argument_parser

log = logging.getLogger("spark_jobs.analytics")


class MissingCleanDataError(FileNotFoundError):
    """An entity has no clean data at all: the cleaning job has not run."""


def up_to(day: date) -> Transform:
    """Transform: the rows of partitions ``dt <= day``, without the ``dt`` column."""
    return lambda df: df.where(F.col("dt") <= F.lit(day)).drop("dt")


def read_clean_as_of(spark: SparkSession, lake: Lake, entity: Entity, day: date) -> DataFrame:
    """The clean rows of ``entity`` up to ``day``, one per record key (the latest ingested).

    Only the columns the results use are read and shuffled.
    """
    url = lake.url(dataset_prefix("clean", entity))
    try:
        clean = spark.read.option("basePath", url).parquet(url)
    except AnalysisException as error:
        raise MissingCleanDataError(f"no clean {entity} data at {url}: run the clean job first") from error
    columns = (*USED_COLUMNS[entity], *LATEST_BY, "dt")
    return clean.select(*columns).transform(up_to(day)).transform(keep_latest(KEY_FIELD[entity]))


def write_results(lake: Lake, day: date, results: dict[str, DataFrame]) -> None:
    """Overwrite each result's ``dt=<day>`` partition (one small Parquet file each)."""
    for name, result in results.items():
        target = lake.url(partition_prefix("analytics", name, day))
        result.coalesce(1).write.mode("overwrite").parquet(target)
        log.info("analytics %s written", target)


def main(argv: Sequence[str] | None = None) -> None:
    parser = lake_argument_parser("Compute the analytics as of one day over all clean data up to it.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lake = Lake(bucket=args.bucket, root=args.lake_root)
    spark = build_session(f"analytics {args.date}")
    pins, geos, users = (read_clean_as_of(spark, lake, entity, args.date) for entity in ("pin", "geo", "user"))
    write_results(lake, args.date, all_results(pins, geos, users))


if __name__ == "__main__":
    main(sys.argv[1:])
