"""Analytics job: as of a date, over all clean data up to and including it -> analytics/<name>/dt=<date>/.

Usage: ``spark-submit --py-files lake.zip spark_jobs/analytics.py --date 2026-11-25 --bucket pinterest-lake``.
It first checks that ``<date>`` and every earlier drained day have a committed clean partition, and fails
naming the missing ones. Each result overwrites only its own ``dt=<date>`` partition; records cleaned on
several days count once (the latest ingested).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from pyspark.sql import DataFrame, SparkSession

from include.lake import MANIFEST_NAME, SUCCESS_NAME, dataset_prefix, partition_prefix
from include.records import ENTITIES, KEY_FIELD, Entity
from spark_jobs.cleaning import LATEST_BY, keep_latest
from spark_jobs.manifest import days_with_marker
from spark_jobs.queries import USED_COLUMNS, all_results
from spark_jobs.session import Lake, build_session, lake_argument_parser

log = logging.getLogger("spark_jobs.analytics")


class MissingCleanDataError(FileNotFoundError):
    """A day the analytics need has no committed clean partition: the clean job has not run (or not finished)."""


def missing_clean_days(day: date, drained: Iterable[date], cleaned: Iterable[date]) -> list[date]:
    """The days that must be clean as of ``day`` but are not: ``day`` itself and every drained day before it."""
    needed = {day} | {drained_day for drained_day in drained if drained_day <= day}
    return sorted(needed - set(cleaned))


def missing_clean_message(day: date, missing: Mapping[Entity, Sequence[date]]) -> str:
    """The error naming each entity's missing clean days."""
    listing = "; ".join(f"{entity}: {', '.join(map(str, days))}" for entity, days in missing.items())
    return (
        f"clean data is incomplete as of {day}: run the clean job for {listing} first "
        f"(every day up to {day} with a raw manifest, and {day} itself, needs clean/<entity>/dt=<day>/_SUCCESS)"
    )


def clean_days_as_of(spark: SparkSession, lake: Lake, day: date) -> dict[Entity, list[date]]:
    """Each entity's committed clean days up to ``day``; raises MissingCleanDataError when any needed day lacks one.

    A clean day is committed when its partition holds ``_SUCCESS`` (Spark's committer writes it last); a day
    was drained when its raw partition holds a manifest. One recursive listing per dataset finds both.
    """
    cleaned, missing = {}, {}
    for entity in ENTITIES:
        committed = days_with_marker(spark, lake.url(dataset_prefix("clean", entity)), SUCCESS_NAME)
        cleaned[entity] = [d for d in committed if d <= day]
        drained = days_with_marker(spark, lake.url(dataset_prefix("raw", entity)), MANIFEST_NAME)
        lacking = missing_clean_days(day, drained, cleaned[entity])
        if lacking:
            missing[entity] = lacking
    if missing:
        raise MissingCleanDataError(missing_clean_message(day, missing))
    return cleaned


def read_clean(spark: SparkSession, lake: Lake, entity: Entity, days: Sequence[date]) -> DataFrame:
    """The clean rows of ``entity`` on ``days``, one per record key (the latest ingested).

    Only these partitions, and only the columns the results use, are read.
    """
    paths = [lake.url(partition_prefix("clean", entity, d)) for d in days]
    clean = spark.read.option("basePath", lake.url(dataset_prefix("clean", entity))).parquet(*paths)
    return clean.select(*USED_COLUMNS[entity], *LATEST_BY).transform(keep_latest(KEY_FIELD[entity]))


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
    days = clean_days_as_of(spark, lake, args.date)
    pins, geos, users = (read_clean(spark, lake, entity, days[entity]) for entity in ENTITIES)
    write_results(lake, args.date, all_results(pins, geos, users))


if __name__ == "__main__":
    main(sys.argv[1:])
