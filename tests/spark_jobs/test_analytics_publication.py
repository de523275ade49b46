"""The analytics of a day published as one unit, and later days whose analytics were computed from other data."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from include.backfill import clear_analytics_command
from include.lake import SOURCE_NAME, partition_prefix, publication_key
from spark_jobs import analytics, clean
from spark_jobs.lease import NoLease
from spark_jobs.publication import (
    Publication,
    Stale,
    changed_days,
    recompute_commands,
    stale_later_days,
    stale_message,
)
from spark_jobs.session import Lake
from tests.spark_jobs.lake_days import DAYS, WriteRaw, run, seed_entity_day, triple

RESULT_NAMES = {
    "popular_category_by_country",
    "popular_category_by_year",
    "top_poster_by_country",
    "top_country_by_follower_count",
    "popular_category_by_age_group",
    "median_followers_by_age_group",
    "users_joined_by_year",
    "median_followers_by_join_year",
    "median_followers_by_age_group_and_join_year",
}  # DESIGN.md §5's eight analytics; the third has two results


def published(lake: Path, day: date) -> dict | None:
    path = lake / publication_key(day)
    return json.loads(path.read_text()) if path.exists() else None


def parquet_rows(lake: Path, name: str, day: date) -> int:
    """Rows of a result's partition, read with pyarrow (not Spark)."""
    folder = lake / partition_prefix("analytics", name, day)
    return sum(pq.read_metadata(path).num_rows for path in folder.glob("*.parquet"))


def test_a_day_is_published_after_its_nine_results_with_their_rows_and_the_data_they_read(lake: Path) -> None:
    logical = "2026-11-24T09:30:00.000005+00:00"
    run(analytics, lake, DAYS[1], "--run-id", "manual__2026-11-24", "--attempt", "2", "--logical-date", logical)

    document = published(lake, DAYS[1])
    assert document is not None
    assert (document["day"], document["run_id"], document["attempt"]) == ("2026-11-23", "manual__2026-11-24", 2)
    assert datetime.fromisoformat(document["logical_date"]) == datetime.fromisoformat(logical)
    assert set(document["results"]) == RESULT_NAMES
    assert document["results"] == {name: parquet_rows(lake, name, DAYS[1]) for name in RESULT_NAMES}
    assert document["results"]["users_joined_by_year"] == 1  # one joining year: 2017
    # each clean day read, named by the raw data the clean job says it cleaned (its _source.json)
    expected = {
        entity: {
            day.isoformat(): json.loads((lake / partition_prefix("clean", entity, day) / SOURCE_NAME).read_text())[
                "raw_data_sha256"
            ]
            for day in DAYS[:2]
        }
        for entity in ("pin", "geo", "user")
    }
    assert document["inputs"] == expected
    assert not (lake / "analytics" / "_published" / "dt=2026-11-24").exists()  # only its own day


def test_a_job_that_dies_between_two_results_leaves_the_day_unpublished_until_its_retry(
    spark: SparkSession, lake: Path
) -> None:
    run(analytics, lake, DAYS[1])
    first = published(lake, DAYS[1])
    assert first is not None
    good = spark.createDataFrame([("x",)], "value string")
    failing = spark.range(1).select(F.raise_error(F.lit("killed between two results")).alias("value"))
    results = {"r1": good, "r2": good, "r3": failing, "r4": good}
    publication = Publication.model_validate({**first, "run_id": "retry-me", "results": dict.fromkeys(results, 1)})

    with pytest.raises(Exception, match="killed between two results"):
        analytics.publish(Lake(bucket="unused", root=lake.as_uri()), publication, results, NoLease())

    assert published(lake, DAYS[1]) is None  # results r1 and r2 are new, the older nine are still there
    assert (lake / partition_prefix("analytics", "r2", DAYS[1])).exists()
    run(analytics, lake, DAYS[1])  # the retry
    again = published(lake, DAYS[1])
    assert again is not None and again["published_at"] > first["published_at"]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_later_day_computed_from_data_redrained_since_is_named_with_the_command_that_computes_it_again(
    spark: SparkSession, lake: Path, write_raw: WriteRaw, caplog: pytest.LogCaptureFixture
) -> None:
    for day in DAYS:  # as scheduled runs: each at its day's midnight
        run(analytics, lake, day, "--logical-date", f"{day}T00:00:00+00:00")
    day3_before = published(lake, DAYS[2])
    # day 1's pins drained again with other data (a record re-posted with a new category), then cleaned
    seed_entity_day(write_raw, "pin", 0, [triple(1, "art", "Chad"), triple(2, "diy", "Chad")])
    run(clean, lake, DAYS[0], "--entity", "pin")

    with caplog.at_level(logging.WARNING, logger="spark_jobs.analytics"):
        run(analytics, lake, DAYS[0])

    assert warnings_of(caplog) == [
        "the analytics of 2 later days (2026-11-23..2026-11-24) were computed from other data than the lake holds "
        "now up to 2026-11-22 (pin 2026-11-22: changed since, or read by only one of them). A run of one day changes "
        "nothing else, so they stay as they were; to compute them again: "
        "airflow tasks clear pinterest_daily --task-regex spark_analytics --start-date 2026-11-23T00:00:00+00:00 "
        "--end-date 2026-11-24T00:00:00+00:00"
    ]
    assert published(lake, DAYS[2]) == day3_before  # nothing else changed

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="spark_jobs.analytics"):
        run(analytics, lake, DAYS[0])  # the same data as its previous publication: said once, not again
        run(analytics, lake, DAYS[2])  # what the command does
        run(analytics, lake, DAYS[1])
    assert warnings_of(caplog) == []


def test_later_days_are_named_even_when_the_try_that_publishes_fails_afterwards(
    spark: SparkSession,
    lake: Path,
    write_raw: WriteRaw,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check ran after publishing: a try that published and then failed (its lease's release) left its retry
    its own publication of the same data, so nobody named the later days."""
    for day in DAYS:
        run(analytics, lake, day, "--logical-date", f"{day}T00:00:00+00:00")
    seed_entity_day(write_raw, "pin", 0, [triple(1, "art", "Chad"), triple(2, "diy", "Chad")])
    run(clean, lake, DAYS[0], "--entity", "pin")
    publish = analytics.publish

    def publish_then_fail(*args: object) -> None:
        publish(*args)  # type: ignore[arg-type]
        raise RuntimeError("the lease could not be released")

    monkeypatch.setattr(analytics, "publish", publish_then_fail)
    failed = pytest.raises(RuntimeError, match="the lease could not be released")
    with caplog.at_level(logging.WARNING, logger="spark_jobs.analytics"), failed:
        run(analytics, lake, DAYS[0])

    [warning] = warnings_of(caplog)
    assert warning.startswith("the analytics of 2 later days (2026-11-23..2026-11-24) were computed from other data")
    assert published(lake, DAYS[0]) is not None


def test_a_day_cleaned_again_from_the_same_raw_data_leaves_later_days_current(
    lake: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run(analytics, lake, DAYS[2])
    run(clean, lake, DAYS[1])  # a rerun of day 2: same raw data, a new clean write

    with caplog.at_level(logging.WARNING, logger="spark_jobs.analytics"):
        run(analytics, lake, DAYS[1])

    assert warnings_of(caplog) == []


def test_a_later_publication_that_cannot_be_read_is_named_and_skipped(
    lake: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = lake / publication_key(DAYS[2])
    path.parent.mkdir(parents=True)
    path.write_text('{"day": "2026-11-24"}')

    with caplog.at_level(logging.WARNING, logger="spark_jobs.analytics"):
        run(analytics, lake, DAYS[1])

    [warning] = warnings_of(caplog)
    assert warning.startswith(f"{Lake(bucket='unused', root=lake.as_uri()).url(publication_key(DAYS[2]))} cannot be "
                              "read as a publication")  # fmt: skip
    assert published(lake, DAYS[1]) is not None


def test_a_later_publication_whose_checksum_fails_is_named_and_the_job_still_succeeds(
    lake: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run(analytics, lake, DAYS[2])
    path = lake / publication_key(DAYS[2])
    path.write_text(path.read_text().replace('"attempt": 1', '"attempt": 2'))  # Hadoop's .crc no longer matches

    with caplog.at_level(logging.WARNING, logger="spark_jobs.analytics"):
        run(analytics, lake, DAYS[1])

    [warning] = warnings_of(caplog)
    assert "cannot be read as a publication" in warning and "Checksum" in warning
    assert published(lake, DAYS[1]) is not None


D1, D2, D3, D4 = (date(2026, 11, n) for n in (1, 2, 3, 4))


def publication(
    day: date, inputs: dict, first_day: date | None = None, logical_date: datetime | None = None, run_id: str = "r"
) -> Publication:
    return Publication(
        day=day, run_id=run_id, attempt=1, logical_date=logical_date, published_at=datetime(2026, 11, 26, tzinfo=UTC),
        first_day=first_day, raw_status="complete", results={"users_joined_by_year": 1}, inputs=inputs,
    )  # fmt: skip


def midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def test_changed_days_compare_only_the_days_the_current_run_read() -> None:
    then = publication(D4, {"pin": {D1: "a", D2: "b", D3: "c", D4: "d"}, "geo": {D2: "g"}})

    # through D2: D3 and D4 are not the current run's to judge
    assert changed_days(then, {"pin": {D1: "a", D2: "b"}, "geo": {D2: "g"}}, None, D2) == []
    assert changed_days(then, {"pin": {D1: "a", D2: "B"}, "geo": {D2: "g"}}, None, D2) == [("pin", D2)]
    # a day read then and gone now, and a day read now that was not then
    assert changed_days(then, {"pin": {D2: "b"}, "geo": {D1: "x", D2: "g"}}, None, D2) == [("geo", D1), ("pin", D1)]
    # days before the lake's first day (the current run's, or the one the publication had) are not compared
    assert changed_days(then, {"pin": {D2: "b"}, "geo": {D2: "g"}}, D2, D2) == []
    assert changed_days(publication(D4, {"pin": {D2: "b"}}, first_day=D2), {"pin": {D1: "a", D2: "b"}}, None, D2) == []


def test_stale_later_days_are_the_later_publications_that_changed_each_with_its_changes() -> None:
    current = {"pin": {D1: "new"}}
    later = {
        D1: publication(D1, {"pin": {D1: "old"}}, logical_date=midnight(D1)),  # the current day itself: not later
        D2: publication(D2, {"pin": {D1: "old", D2: "x"}}, logical_date=midnight(D2)),
        D3: publication(D3, {"pin": {D1: "new", D3: "y"}}, logical_date=midnight(D3)),  # computed after the change
        D4: publication(D4, {"pin": {D1: "old"}}, logical_date=midnight(D4)),
    }

    stale = stale_later_days(later.values(), current, None, D1)

    assert stale == {D2: Stale(later[D2], [("pin", D1)]), D4: Stale(later[D4], [("pin", D1)])}
    message = stale_message(D1, stale)
    assert message.startswith("the analytics of 2 later days (2026-11-02, 2026-11-04) were computed from other data")
    assert message.endswith(f"{clear_analytics_command(D2, D2)} and {clear_analytics_command(D4, D4)}")


def test_each_stale_day_is_cleared_by_the_logical_date_of_the_run_that_computed_it() -> None:
    by_hand = datetime(2026, 11, 6, 9, 30, 0, 5, tzinfo=UTC)  # a run of D4 triggered from the UI on D4 + 2
    stale = [
        publication(D1, {}, logical_date=midnight(D1)),  # scheduled or backfilled: its day's midnight
        publication(D2, {}, logical_date=midnight(D2)),
        publication(D3, {}, run_id="old-run"),  # published before logical dates were recorded
        publication(D4, {}, logical_date=by_hand),
        publication(date(2026, 11, 6), {}, logical_date=midnight(date(2026, 11, 6))),
    ]

    commands, unknown = recompute_commands(stale)

    clear = "airflow tasks clear pinterest_daily --task-regex spark_analytics"
    assert commands == [
        f"{clear} --start-date 2026-11-01T00:00:00+00:00 --end-date 2026-11-02T00:00:00+00:00",
        f"{clear} --start-date 2026-11-06T00:00:00+00:00 --end-date 2026-11-06T00:00:00+00:00",
        f"{clear} --start-date 2026-11-06T09:30:00.000005+00:00 --end-date 2026-11-06T09:30:00.000005+00:00",
    ]
    assert unknown == ["old-run"]
    # a run triggered by hand whose logical date a range already covers gets no command of its own
    within = publication(D3, {}, logical_date=datetime(2026, 11, 1, 9, 30, tzinfo=UTC))
    assert recompute_commands([*stale[:2], within]) == ([commands[0]], [])
    message = stale_message(D1 - timedelta(days=1), {p.day: Stale(p, [("pin", D1)]) for p in stale})
    assert message.endswith(" and, in the runs old-run (no logical date recorded), clear spark_analytics")


def test_a_publication_the_store_refuses_to_read_is_raised_not_taken_for_a_missing_one(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what s3a raises on a 403: a store error, which a retry (or the operator) must see
    denied = spark.sparkContext._jvm.java.nio.file.AccessDeniedException("s3a://lake/analytics/_published: 403")
    refusal = Py4JJavaError("An error occurred while calling o42.open.\n", denied)

    def refuse(spark: SparkSession, url: str) -> str:
        raise refusal

    monkeypatch.setattr(analytics, "read_text", refuse)
    with pytest.raises(Py4JJavaError) as raised:
        analytics.read_publication(spark, Lake(bucket="unused", root=tmp_path.as_uri()), DAYS[1])
    assert raised.value is refusal
