"""Analytics job: as of a date, over all clean data up to and including it -> analytics/<name>/dt=<date>/.

Usage: ``spark-submit --py-files lake.zip spark_jobs/analytics.py --date 2026-11-25 --bucket pinterest-lake``
(``--first-day 2026-01-01``: the lake's first day, ``LAKE_FIRST_DAY``). It first checks, per entity, that every day
from the lake's first day (without one: the first day any entity drained) up to ``<date>`` is ready (drained, raw
``_SUCCESS``, earlier days complete, a clean partition whose ``_source.json`` names the raw data the day has now),
and fails naming the days that are not. Each result overwrites only its own ``dt=<date>`` partition; records
cleaned on several days count once (the latest ingested). The nine are published as one unit
(``spark_jobs.publication``), and later days whose analytics read data that has changed since are named.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import partial

from py4j.protocol import Py4JJavaError
from pydantic import ValidationError
from pyspark.sql import DataFrame, SparkSession

from include.backfill import clear_analytics_command, run_conf
from include.days import days_between
from include.lake import (
    DQ_NAME,
    MANIFEST_NAME,
    PUBLISHED_NAME,
    SOURCE_NAME,
    SUCCESS_NAME,
    RawStatus,
    dataset_prefix,
    day_status,
    partition_prefix,
    publication_key,
)
from include.records import ENTITIES, KEY_FIELD, Entity
from spark_jobs.cleaning import LATEST_BY, keep_latest
from spark_jobs.failures import run_job
from spark_jobs.lake_fs import delete, java_error_is, markers_by_day, read_text, write_text
from spark_jobs.lease import Lease, check_rows_stored, day_leases, withdrawn_if_lost
from spark_jobs.manifest import Manifest, gate_refusal, parse_manifest
from spark_jobs.publication import DayInputs, Publication, changed_days, stale_later_days, stale_message
from spark_jobs.queries import USED_COLUMNS, all_results
from spark_jobs.readiness import (
    DayState,
    MissingCleanDataError,
    first_needed_day,
    readiness,
    readiness_message,
)
from spark_jobs.session import Lake, build_session, iso_date, iso_datetime, lake_argument_parser

log = logging.getLogger("spark_jobs.analytics")

RAW_MARKERS = frozenset({MANIFEST_NAME, SUCCESS_NAME, DQ_NAME})
CLEAN_MARKERS = frozenset({SUCCESS_NAME, SOURCE_NAME})


class LakeChangedError(RuntimeError):
    """A day the analytics read was drained or cleaned again while they read it: nothing was written (retried)."""


def _read_all(spark: SparkSession, urls: Sequence[str]) -> list[str | None]:
    """The texts of small lake files, read a few at a time (one request round trip each)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda url: read_text(spark, url), urls))


def _markers(
    spark: SparkSession, dataset_url: str, markers: frozenset[str], first_day: date | None, day: date
) -> dict[date, set[str]]:
    """``markers_by_day`` of the days from ``first_day`` (if any) up to ``day``."""
    found = markers_by_day(spark, dataset_url, markers)
    return {d: names for d, names in found.items() if (first_day is None or first_day <= d) and d <= day}


def day_states(
    spark: SparkSession, lake: Lake, entity: Entity, day: date, first_day: date | None = None
) -> dict[date, DayState]:
    """The state of each of ``entity``'s days up to ``day`` (from ``first_day``): one listing per dataset, then its
    marker files."""
    raw = _markers(spark, lake.url(dataset_prefix("raw", entity)), RAW_MARKERS, first_day, day)
    clean = _markers(spark, lake.url(dataset_prefix("clean", entity)), CLEAN_MARKERS, first_day, day)
    drained = sorted(d for d, names in raw.items() if MANIFEST_NAME in names)
    sourced = sorted(d for d, names in clean.items() if SOURCE_NAME in names)
    texts = _read_all(
        spark,
        [lake.url(partition_prefix("raw", entity, d) + MANIFEST_NAME) for d in drained]
        + [lake.url(partition_prefix("clean", entity, d) + SOURCE_NAME) for d in sourced],
    )
    manifests = dict(zip(drained, texts[: len(drained)], strict=True))
    sources = dict(zip(sourced, texts[len(drained) :], strict=True))
    states = {}
    for d in {*drained, *clean}:
        text = manifests.get(d)
        states[d] = DayState(
            raw=parse_manifest(text, partition_prefix("raw", entity, d)) if text is not None else None,
            raw_success=SUCCESS_NAME in raw.get(d, {}),
            clean_success=SUCCESS_NAME in clean.get(d, {}),
            clean_source=sources.get(d),
        )
    return _with_gate_refusals(spark, lake, entity, states, raw)


def _with_gate_refusals(
    spark: SparkSession, lake: Lake, entity: Entity, states: dict[date, DayState], raw: dict[date, set[str]]
) -> dict[date, DayState]:
    """``states``, each drained day that is not cleaned given what keeps the gate from passing it (``gate_refusal``:
    no report, a failed one, one of another manifest); only those days' reports are read."""
    uncleaned = sorted(d for d, s in states.items() if s.raw is not None and s.raw_success and not s.cleaned)
    gated = [d for d in uncleaned if DQ_NAME in raw[d]]
    reports = dict(
        zip(
            gated,
            _read_all(spark, [lake.url(partition_prefix("raw", entity, d) + DQ_NAME) for d in gated]),
            strict=True,
        )
    )
    for d in uncleaned:
        states[d] = replace(states[d], gate_refusal=gate_refusal(reports.get(d), _raw(states[d])))
    return states


LakeState = dict[Entity, dict[date, DayState]]


def lake_state(spark: SparkSession, lake: Lake, day: date, first_day: date | None = None) -> LakeState:
    """The state of every entity's days up to ``day`` (from ``first_day``)."""
    return {entity: day_states(spark, lake, entity, day, first_day) for entity in ENTITIES}


def days_to_read(
    day: date, state: LakeState, first_day: date | None = None, conf: Mapping[str, str | None] | None = None
) -> dict[Entity, list[date]]:
    """Each entity's clean days to read as of ``day`` (none before ``first_day``); raises MissingCleanDataError when
    any needed day of the lake is not ready (its backfill commands carry ``conf``: see ``run_conf``)."""
    first = first_needed_day(day, state, first_day)
    problems = {entity: found for entity, states in state.items() if (found := readiness(day, states, first))}
    if problems:
        raise MissingCleanDataError(readiness_message(day, problems, first_day, conf))
    # exactly the days readiness() checked (a clean partition before the first needed day is not read)
    return {entity: days_between(first, day) for entity in state}


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


def read_inputs(state: LakeState, days: Mapping[Entity, Sequence[date]]) -> DayInputs:
    """Per entity, each clean day read with the identity of the raw data it was cleaned from (a ready day's clean
    partition was cleaned from the raw data the day holds now)."""
    return {entity: {d: _raw(state[entity][d]).data_sha256 for d in read} for entity, read in days.items()}


def read_status(state: LakeState, days: Mapping[Entity, Sequence[date]]) -> RawStatus:
    """The raw status of the data the results include: partial when any day read is, the day itself (an open day's
    run) or an earlier day accepted as final while partial."""
    return day_status(_raw(state[entity][d]).status for entity, read in days.items() for d in read)


def _raw(state: DayState) -> Manifest:
    if state.raw is None:
        raise ValueError("a day read by the analytics has no raw manifest")  # readiness() rules this out
    return state.raw


def publish(lake: Lake, publication: Publication, results: dict[str, DataFrame], lease: Lease) -> None:
    """Withdraw the day's publication, overwrite each result's ``dt=<day>`` partition (one small Parquet file each),
    then publish the nine again, so a reader finds no publication over a half-rewritten set. The lease is renewed
    before each write (it fails when another run has taken the day meanwhile, and then withdraws the publication,
    which the other run may have written before this job's last write landed: ``withdrawn_if_lost``). Each result is
    read back before publishing and again after: its rows must be those the publication names."""
    spark = next(iter(results.values())).sparkSession
    marker = lake.url(publication_key(publication.day))
    when = publication.logical_date or publication.day  # how a clear selects the run (a scheduled run: its day)
    redo = clear_analytics_command(when, when)
    lease.renew()
    delete(spark, marker)
    for name, result in results.items():
        target = lake.url(partition_prefix("analytics", name, publication.day))
        with withdrawn_if_lost(spark, [marker], redo):
            lease.renew()
        result.coalesce(1).write.mode("overwrite").parquet(target)
        log.info("analytics %s written", target)
    with withdrawn_if_lost(spark, [marker], redo):
        lease.renew()
    check_results_stored(spark, lake, publication)
    write_text(spark, marker, publication.model_dump_json(indent=2))
    with withdrawn_if_lost(spark, [marker], redo):  # a pause between the check and the write: withdrawn, not trusted
        lease.renew()
    check_results_stored(spark, lake, publication)  # a late commit that landed between the check and the write
    log.info("analytics of %s published: %s", publication.day, marker)


def check_results_stored(spark: SparkSession, lake: Lake, publication: Publication) -> None:
    """``check_rows_stored`` for each result the publication names; on a difference the publication is deleted."""
    marker = lake.url(publication_key(publication.day))
    for name, rows in publication.results.items():
        check_rows_stored(spark, lake.url(partition_prefix("analytics", name, publication.day)), rows, [marker])


def read_publication(spark: SparkSession, lake: Lake, day: date) -> Publication | None:
    """The publication of ``day``; None when there is none, or when its file is no publication (a model of another
    version, bytes that fail their checksum: named in a warning). The store's own errors are raised."""
    url = lake.url(publication_key(day))
    try:
        text = read_text(spark, url)
        return None if text is None else Publication.model_validate_json(text)
    except (ValidationError, UnicodeDecodeError) as error:
        unreadable = error
    except Py4JJavaError as error:
        if not java_error_is(spark, error, "org.apache.hadoop.fs.ChecksumException"):
            raise
        unreadable = error
    log.warning("%s cannot be read as a publication: %s", url, unreadable)
    return None


def later_publications(spark: SparkSession, lake: Lake, day: date) -> Iterator[Publication]:
    """The publications of the days after ``day``, a few read at a time (a long history is never held at once).
    One that cannot be read is named in a warning and left out, as is one gone since the listing (a run of its day
    is rewriting it, from the data there now)."""
    found = markers_by_day(spark, lake.url(dataset_prefix("analytics", PUBLISHED_NAME)), frozenset({MANIFEST_NAME}))
    later = sorted(d for d in found if d > day)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for publication in pool.map(lambda d: read_publication(spark, lake, d), later):
            if publication is not None:
                yield publication


def warn_of_stale_later_days(
    spark: SparkSession, lake: Lake, publication: Publication, previous: Publication | None
) -> None:
    """Log which later days' analytics were computed from other data than ``publication`` reads, with the commands
    that compute them again. Nothing to look for when the day's previous publication read the same data. A failure
    here is only logged: it must not keep the day's results from being published."""
    day, since, inputs = publication.day, publication.first_day, publication.inputs
    if previous is not None and not changed_days(previous, inputs, since, day):
        return
    try:
        stale = stale_later_days(later_publications(spark, lake, day), inputs, since, day)
    except Exception as error:  # the check informs; it must not fail a job whose results are published
        log.warning(
            "the analytics of the days after %s could not be compared with its data: %s", day, error, exc_info=True
        )
        return
    if stale:
        log.warning(stale_message(day, stale))


def argument_parser() -> argparse.ArgumentParser:
    """The job's arguments: the lake's, then the run's first day, logical date and topics."""
    parser = lake_argument_parser("Compute the analytics as of one day over all clean data up to it.")
    parser.add_argument(
        "--first-day",
        type=partial(iso_date, flag="--first-day"),
        default=None,
        help="the lake's first day (LAKE_FIRST_DAY): every day from it up to --date must be ready, none before it is "
        "read (by default: from the first day any entity has drained)",
    )
    parser.add_argument(
        "--logical-date",
        type=iso_datetime,
        default=None,
        help="the Airflow run's logical date (ISO 8601), recorded in the publication: a later run that finds the "
        "day out of date names the command that clears this run",
    )
    parser.add_argument(
        "--topic-prefix",
        default=None,
        help="the run's Kafka topic prefix (its topic_prefix param): a backfill that an error asks for drains these "
        "topics",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = argument_parser()
    args = parser.parse_args(argv)
    if args.first_day is not None and args.first_day > args.date:
        parser.error(
            f"--first-day {args.first_day} is after --date {args.date}: {args.date} is before the lake's first day "
            "(LAKE_FIRST_DAY), so its analytics would read nothing; set LAKE_FIRST_DAY to that day or earlier"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lake = Lake(bucket=args.bucket, root=args.lake_root)
    with day_leases(lake, ["analytics"], args.date, args.run_id, args.attempt, args.lease_wait) as leases:
        lease = leases["analytics"]
        spark = build_session(f"analytics {args.date}")
        before = lake_state(spark, lake, args.date, args.first_day)
        conf = run_conf(None if args.lake_root else args.bucket, args.topic_prefix, args.first_day)
        days = days_to_read(args.date, before, args.first_day, conf)
        pins, geos, users = (read_clean(spark, lake, entity, days[entity]) for entity in ENTITIES)
        results = computed(spark, all_results(pins, geos, users))
        # a clean job rewriting a day while it was read (another run) may have left a mix: write nothing, retry
        if lake_state(spark, lake, args.date, args.first_day) != before:
            raise LakeChangedError(
                f"the lake changed while the analytics as of {args.date} read it (a clean or drain job of another "
                "run rewrote a day they use): nothing was written; a retry reads it again"
            )
        publication = Publication(
            day=args.date,
            run_id=args.run_id,
            attempt=args.attempt,
            logical_date=args.logical_date,
            published_at=datetime.now(UTC),
            first_day=args.first_day,
            raw_status=read_status(before, days),
            results={name: result.count() for name, result in results.items()},
            inputs=read_inputs(before, days),
        )
        # before publishing: a try that publishes and then fails (its lease's release, say) leaves its retry a
        # publication of the same data to compare with, and the retry would find nothing to warn of
        warn_of_stale_later_days(spark, lake, publication, read_publication(spark, lake, args.date))
        publish(lake, publication, results, lease)


if __name__ == "__main__":
    run_job(main, sys.argv[1:])
