"""Analytics job: as of a date, over all clean data up to and including it -> analytics/<name>/dt=<date>/.

Usage: ``spark-submit --py-files lake.zip spark_jobs/analytics.py --date 2026-11-25 --bucket pinterest-lake``.
It first checks that ``<date>`` and every earlier drained day are ready (raw ``_SUCCESS``, earlier days complete,
a clean partition cleaned from the raw data the day has now), and fails naming the days that are not. Each result
overwrites only its own ``dt=<date>`` partition; records cleaned on several days count once (the latest ingested).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import DataFrame, SparkSession

from include.lake import MANIFEST_NAME, SOURCE_NAME, SUCCESS_NAME, dataset_prefix, partition_prefix
from include.records import ENTITIES, KEY_FIELD, Entity
from spark_jobs.cleaning import LATEST_BY, keep_latest
from spark_jobs.lake_fs import markers_by_day, read_text
from spark_jobs.manifest import Manifest, cleaned_from, parse_manifest
from spark_jobs.queries import USED_COLUMNS, all_results
from spark_jobs.session import Lake, build_session, lake_argument_parser

log = logging.getLogger("spark_jobs.analytics")

RAW_MARKERS = frozenset({MANIFEST_NAME, SUCCESS_NAME})
CLEAN_MARKERS = frozenset({SUCCESS_NAME, SOURCE_NAME})


class MissingCleanDataError(FileNotFoundError):
    """A day the analytics need is not ready: not cleaned (or cleaned before a re-drain), or its raw day unfinished."""


@dataclass(frozen=True)
class DayState:
    """What the lake holds of one entity's day, as far as the analytics' readiness goes."""

    raw: Manifest | None = None  # None when the day was never drained
    raw_success: bool = False
    clean_success: bool = False
    clean_source: str | None = None  # the clean partition's _source.json (unique to each clean write)
    clean_after_raw: bool = False  # clean _SUCCESS written after the raw manifest (the store's clock)


@dataclass(frozen=True)
class Readiness:
    """The days, up to the analytics' day, that keep an entity's data from being used."""

    not_cleaned: list[date] = field(default_factory=list)
    unfinished: list[date] = field(default_factory=list)
    partial: list[date] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.not_cleaned or self.unfinished or self.partial)


def readiness(day: date, states: Mapping[date, DayState]) -> Readiness:
    """Check ``day`` and every drained day before it.

    Each needs its raw ``_SUCCESS`` (else unfinished: a drain is running, failed or was killed), and a clean
    partition with ``_SUCCESS`` cleaned from the current raw data (else not cleaned, also when the day was
    re-drained with other data after cleaning): its ``_source.json`` names that data, or, for a partition
    without one (cleaned before clean jobs wrote it, or a job killed right after Spark's commit), its
    ``_SUCCESS`` is newer than the manifest.
    A day before ``day`` must be complete: a partial one was drained while open and its completing run never
    came (``day`` itself may be partial: the run of an open day), unless it was accepted as final (Kafka could no
    longer complete it).
    """
    found = Readiness()
    needed = {day} | {d for d, state in states.items() if d <= day and state.raw is not None}
    for needed_day in sorted(needed):
        state = states.get(needed_day, DayState())
        if state.raw is not None and not state.raw_success:
            found.unfinished.append(needed_day)
            continue
        if (
            needed_day < day
            and state.raw is not None
            and state.raw.status == "partial"
            and not state.raw.accepted_partial
        ):
            found.partial.append(needed_day)
        if state.raw is None:
            current = False
        elif state.clean_source is not None:
            current = cleaned_from(state.clean_source, state.raw)
        else:
            current = state.clean_after_raw
        if not state.clean_success or not current:
            found.not_cleaned.append(needed_day)
    return found


def readiness_message(day: date, problems: Mapping[Entity, Readiness]) -> str:
    """The error naming, per kind of problem, each entity's days and what to do."""

    def listing(days_of: Callable[[Readiness], list[date]]) -> str:
        return "; ".join(f"{e}: {', '.join(map(str, days_of(r)))}" for e, r in problems.items() if days_of(r))

    parts = []
    if text := listing(lambda r: r.not_cleaned):
        parts.append(
            f"clean data is incomplete as of {day}: run the clean job for {text} first (every day up to {day} "
            f"with a raw manifest, and {day} itself, needs clean/<entity>/dt=<day>/ with _SUCCESS, cleaned from "
            "the raw data the day has now)"
        )
    if text := listing(lambda r: r.unfinished):
        parts.append(
            f"raw days without _SUCCESS (a first drain has not finished, or failed): {text}; "
            "let it finish or rerun the drain of those days, then their clean job"
        )
    if text := listing(lambda r: r.partial):
        parts.append(
            f"earlier raw days still partial (drained while open, never completed): {text}; rerun their "
            "drain (it drains a day that is over as complete; if Kafka no longer holds the whole day, it says so, "
            "and a rerun with accept_partial=true keeps the partial day as final), then their clean job"
        )
    return "; and ".join(parts)


def _read_all(spark: SparkSession, urls: Sequence[str]) -> list[str | None]:
    """The texts of small lake files, read a few at a time (one request round trip each)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda url: read_text(spark, url), urls))


def day_states(spark: SparkSession, lake: Lake, entity: Entity, day: date) -> dict[date, DayState]:
    """The state of each of ``entity``'s days up to ``day``: one listing per dataset, then its marker files."""
    raw = markers_by_day(spark, lake.url(dataset_prefix("raw", entity)), RAW_MARKERS)
    clean = markers_by_day(spark, lake.url(dataset_prefix("clean", entity)), CLEAN_MARKERS)
    drained = sorted(d for d, names in raw.items() if d <= day and MANIFEST_NAME in names)
    sourced = sorted(d for d, names in clean.items() if d <= day and SOURCE_NAME in names)
    texts = _read_all(
        spark,
        [lake.url(partition_prefix("raw", entity, d) + MANIFEST_NAME) for d in drained]
        + [lake.url(partition_prefix("clean", entity, d) + SOURCE_NAME) for d in sourced],
    )
    manifests = dict(zip(drained, texts[: len(drained)], strict=True))
    sources = dict(zip(sourced, texts[len(drained) :], strict=True))
    states = {}
    for d in {*drained, *(d for d in clean if d <= day)}:
        text = manifests.get(d)
        raw_written, clean_committed = raw.get(d, {}).get(MANIFEST_NAME), clean.get(d, {}).get(SUCCESS_NAME)
        states[d] = DayState(
            raw=parse_manifest(text, partition_prefix("raw", entity, d)) if text is not None else None,
            raw_success=SUCCESS_NAME in raw.get(d, {}),
            clean_success=SUCCESS_NAME in clean.get(d, {}),
            clean_source=sources.get(d),
            clean_after_raw=raw_written is not None and clean_committed is not None and clean_committed > raw_written,
        )
    return states


LakeState = dict[Entity, dict[date, DayState]]


def lake_state(spark: SparkSession, lake: Lake, day: date) -> LakeState:
    """The state of every entity's days up to ``day``."""
    return {entity: day_states(spark, lake, entity, day) for entity in ENTITIES}


def days_to_read(day: date, state: LakeState) -> dict[Entity, list[date]]:
    """Each entity's clean days to read as of ``day``; raises MissingCleanDataError when any needed day is not ready."""
    problems = {entity: found for entity, states in state.items() if (found := readiness(day, states))}
    if problems:
        raise MissingCleanDataError(readiness_message(day, problems))
    return {entity: sorted(d for d, s in states.items() if s.clean_success) for entity, states in state.items()}


def read_clean(spark: SparkSession, lake: Lake, entity: Entity, days: Sequence[date]) -> DataFrame:
    """The clean rows of ``entity`` on ``days``, one per record key (the latest ingested).

    Only these partitions, and only the columns the results use, are read.
    """
    paths = [lake.url(partition_prefix("clean", entity, d)) for d in days]
    clean = spark.read.option("basePath", lake.url(dataset_prefix("clean", entity))).parquet(*paths)
    return clean.select(*USED_COLUMNS[entity], *LATEST_BY).transform(keep_latest(KEY_FIELD[entity]))


def computed(spark: SparkSession, results: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """The results computed now and held by the driver (they are small aggregates), as local DataFrames."""
    return {name: spark.createDataFrame(result.collect(), result.schema) for name, result in results.items()}


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
    before = lake_state(spark, lake, args.date)
    days = days_to_read(args.date, before)
    pins, geos, users = (read_clean(spark, lake, entity, days[entity]) for entity in ENTITIES)
    results = computed(spark, all_results(pins, geos, users))
    # a clean job rewriting a day while it was read (another run) may have left a mix: write nothing, retry
    if lake_state(spark, lake, args.date) != before:
        raise MissingCleanDataError(
            f"the lake changed while the analytics as of {args.date} read it (a clean or drain job of another run "
            "rewrote a day they use): nothing was written; a retry reads it again"
        )
    write_results(lake, args.date, results)


if __name__ == "__main__":
    main(sys.argv[1:])
