"""The analytics job on a local lake: as of a date, over clean data up to it, one partition per result."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError
from pyspark.sql import SparkSession

from include.backfill import run_conf
from include.emulator.local_lake import gate_local_day
from include.job_exits import USAGE_EXIT_CODE
from include.lake import DQ_NAME, SOURCE_NAME, SUCCESS_NAME, manifest_key, partition_prefix, publication_key
from include.settings import PlatformSettings
from spark_jobs import analytics, clean
from spark_jobs.manifest import Manifest, source_json
from spark_jobs.readiness import DayState, MissingCleanDataError, first_needed_day, readiness, readiness_message
from spark_jobs.session import Lake
from tests.spark_jobs.lake_days import (
    DAYS,
    NOW,
    T0,
    WriteRaw,
    read_result,
    run,
    seed_day,
    seed_entity_day,
    triple,
)


def every_entity(day: str) -> str:
    """How the missing-data error lists one day missing for every entity."""
    return f"pin: {day}; geo: {day}; user: {day}"


def backfill(first: str, last: str, conf: str = '{"lake_first_day": null}') -> str:
    """The command the missing-data error gives to drain the days ``first`` to ``last`` (both inclusive), with a conf
    that replaces the one of a run it reprocesses."""
    return (
        "airflow backfill create --dag-id pinterest_daily --max-active-runs 1 --reprocess-behavior completed "
        f"--dag-run-conf '{conf}' --from-date {first}T00:00:00+00:00 --to-date {last}T00:00:00+00:00"
    )


def published_status(lake: Path, day: date) -> str:
    """The raw status the analytics publication of ``day`` gives for the data its results include."""
    return json.loads((lake / publication_key(day)).read_text())["raw_status"]


def test_as_of_a_date_counts_each_record_once_and_ignores_later_days(spark: SparkSession, lake: Path) -> None:
    run(analytics, lake, DAYS[1])

    # as of day 2: pins 1 (latest: diy) and 2 (art); a tie broken alphabetically
    assert read_result(spark, lake, "popular_category_by_country", DAYS[1]) == [("Chad", "art", 1)]
    assert read_result(spark, lake, "users_joined_by_year", DAYS[1]) == [(2017, 2)]
    assert read_result(spark, lake, "median_followers_by_age_group", DAYS[1]) == [("25-35", 1_500.0)]
    assert published_status(lake, DAYS[1]) == "complete"


def test_rerun_overwrites_only_its_own_date(spark: SparkSession, lake: Path) -> None:
    run(analytics, lake, DAYS[1])
    run(analytics, lake, DAYS[2])
    before = read_result(spark, lake, "popular_category_by_country", DAYS[1])

    run(analytics, lake, DAYS[2])

    assert read_result(spark, lake, "popular_category_by_country", DAYS[1]) == before
    assert read_result(spark, lake, "popular_category_by_country", DAYS[2]) == [("Chad", "travel", 3)]
    names = {path.name for path in (lake / "analytics").iterdir()}
    assert len(names) == 10  # the nine results and the publications of their days
    for name in names:
        assert sorted(path.name for path in (lake / "analytics" / name).iterdir()) == ["dt=2026-11-23", "dt=2026-11-24"]


def test_the_day_itself_never_drained_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(MissingCleanDataError) as raised:
        run(analytics, tmp_path, DAYS[0])

    message = str(raised.value)
    command = backfill("2026-11-22", "2026-11-22")
    assert message.startswith(f"days never drained: {every_entity('2026-11-22')}; backfill them first ({command})")
    assert "run the clean job" not in message  # it would fail: the day has no raw manifest to clean
    # the run's topics go into the command, so that the backfill drains them and not the DAG's default ones
    with pytest.raises(MissingCleanDataError) as raised:
        run(analytics, tmp_path, DAYS[0], "--topic-prefix", "test-abc")
    command = backfill("2026-11-22", "2026-11-22", '{"topic_prefix": "test-abc", "lake_first_day": null}')
    assert f"backfill them first ({command})" in str(raised.value)


def test_a_day_never_drained_since_the_lakes_first_drained_day_is_named_with_its_backfill(
    spark: SparkSession, tmp_path: Path, write_raw: WriteRaw
) -> None:
    # pin: days 1 and 3 (day 2 missed, e.g. while the DAG was paused); geo: every day; user: from day 2 on (its day 1
    # deleted to be drained again, say: a run drains every entity of its day, so user lacks day 1)
    seed_entity_day(write_raw, "pin", 0, [triple(1, "diy", "Chad")])
    seed_entity_day(write_raw, "pin", 2, [triple(3, "travel", "Chad")])
    for number, ind, category in ((0, 1, "diy"), (1, 2, "art"), (2, 3, "travel")):
        seed_entity_day(write_raw, "geo", number, [triple(ind, category, "Chad")])
    for number, ind, category in ((1, 2, "art"), (2, 3, "travel")):
        seed_entity_day(write_raw, "user", number, [triple(ind, category, "Chad")])
    run(clean, tmp_path, DAYS[0], "--entity", "pin", "geo")
    run(clean, tmp_path, DAYS[1], "--entity", "geo", "user")
    run(clean, tmp_path, DAYS[2])

    with pytest.raises(MissingCleanDataError) as raised:
        run(analytics, tmp_path, DAYS[2])

    message = str(raised.value)
    assert message.startswith(
        "days never drained: pin: 2026-11-23; user: 2026-11-22; backfill them first "
        f"({backfill('2026-11-22', '2026-11-23')}): each day from the lake's first drained day up to 2026-11-24"
    )
    assert "; and " not in message  # no other kind of problem: every drained day is cleaned
    assert not (tmp_path / "analytics").exists()

    seed_entity_day(write_raw, "pin", 1, [triple(2, "art", "Chad")])  # what the backfill drains
    seed_entity_day(write_raw, "user", 0, [triple(1, "diy", "Chad")])
    run(clean, tmp_path, DAYS[1], "--entity", "pin")
    run(clean, tmp_path, DAYS[0], "--entity", "user")
    run(analytics, tmp_path, DAYS[2])
    # pins 1 (diy), 2 (art, the backfilled day) and 3 (travel): a tie broken alphabetically (without pin 2: diy)
    assert read_result(spark, tmp_path, "popular_category_by_country", DAYS[2]) == [("Chad", "art", 1)]


def ready_day() -> DayState:
    """A day drained complete and cleaned from that raw data."""
    manifest = Manifest(status="complete", keys=(), sha256="m", data_sha256="d")
    return DayState(raw=manifest, raw_success=True, clean_success=True, clean_source=source_json(manifest, NOW, "r", 1))


def test_never_drained_days_get_one_backfill_per_run_of_consecutive_days() -> None:
    ready = ready_day()
    day = date(2026, 11, 6)
    states = {
        "pin": {date(2026, 11, 1): ready, date(2026, 11, 4): ready},
        "geo": {date(2026, 11, n): ready for n in range(3, 7)},  # from 3 on: 1 and 2 are missing too
        "user": {},  # nothing drained: the day itself is missing
    }

    first = first_needed_day(day, states)
    problems = {
        entity: found for entity, entity_states in states.items() if (found := readiness(day, entity_states, first))
    }

    assert first == date(2026, 11, 1)  # the first day any entity drained: pin's
    assert {entity: found.never_drained for entity, found in problems.items()} == {
        "pin": [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 5), date(2026, 11, 6)],
        "geo": [date(2026, 11, 1), date(2026, 11, 2)],
        "user": [date(2026, 11, n) for n in range(1, 7)],
    }
    assert readiness_message(day, problems).startswith(
        "days never drained: pin: 2026-11-02, 2026-11-03, 2026-11-05, 2026-11-06; geo: 2026-11-01, 2026-11-02; "
        f"user: 2026-11-01..2026-11-06; backfill them first ({backfill('2026-11-01', '2026-11-06', '{}')})"
    )


def test_an_earlier_drained_day_not_cleaned_is_an_error(drained: Path) -> None:
    for day in (DAYS[0], DAYS[2]):
        run(clean, drained, day)

    with pytest.raises(
        MissingCleanDataError, match=rf"as of 2026-11-24: run the clean job for {every_entity('2026-11-23')} first"
    ) as raised:
        run(analytics, drained, DAYS[2])
    assert not (drained / "analytics").exists()
    clear = (
        "airflow tasks clear pinterest_daily --task-regex spark_clean --start-date 2026-11-23T00:00:00+00:00 "
        "--end-date 2026-11-23T00:00:00+00:00 --downstream"
    )
    assert f"first ({clear}, which clears the scheduled or backfilled run of each day;" in str(raised.value)


def test_an_earlier_day_the_gate_failed_is_named_with_the_gates_reason_not_the_clean_job(drained: Path) -> None:
    # the gate failed pin's day 2, so that run's clean task never ran: clearing spark_clean cannot make it ready
    for day in (DAYS[0], DAYS[2]):
        run(clean, drained, day)
    report = drained / partition_prefix("raw", "pin", DAYS[1]) / DQ_NAME
    failed = json.loads(report.read_text()) | {"passed": False, "failures": ["records 1 < min_records 5"]}
    report.write_text(json.dumps(failed))
    (drained / partition_prefix("raw", "user", DAYS[1]) / DQ_NAME).unlink()  # its gate never ran (a failed task)

    with pytest.raises(MissingCleanDataError) as raised:
        run(analytics, drained, DAYS[2])

    message = str(raised.value)
    assert "run the clean job for geo: 2026-11-23 first" in message  # its gate passed
    assert (
        "days the quality gate has not passed, so their clean job refuses them (clearing spark_clean alone does not "
        "help): pin 2026-11-23: the quality gate failed it (records 1 < min_records 5): a retry reads the same data. "
        "Drain the day again once its source is fixed, or rerun the day with thresholds that accept it (run conf); "
        "user 2026-11-23: it has no quality report (_dq.json): the gate has not checked it since it was drained; "
        "clear the drain task of that day's run"
    ) in message
    assert "pin: 2026-11-23" not in message and "user: 2026-11-23" not in message  # not among the days to clean


def test_the_day_itself_not_cleaned_is_an_error_even_when_later_days_are(drained: Path) -> None:
    for day in DAYS[1:]:
        run(clean, drained, day)

    with pytest.raises(
        MissingCleanDataError, match=rf"as of 2026-11-22: run the clean job for {every_entity('2026-11-22')} first"
    ):
        run(analytics, drained, DAYS[0])


def test_a_clean_partition_without_success_marker_counts_as_missing(lake: Path) -> None:
    (lake / partition_prefix("clean", "geo", DAYS[1]) / SUCCESS_NAME).unlink()

    with pytest.raises(MissingCleanDataError, match=r"as of 2026-11-24: run the clean job for geo: 2026-11-23 first"):
        run(analytics, lake, DAYS[2])


def test_clean_names_the_raw_manifest_it_was_cleaned_from(lake: Path) -> None:
    for entity in ("pin", "geo", "user"):
        for day in DAYS:
            raw_manifest = (lake / manifest_key(entity, day)).read_bytes()
            source = json.loads((lake / partition_prefix("clean", entity, day) / SOURCE_NAME).read_text())
            assert source["raw_manifest_sha256"] == hashlib.sha256(raw_manifest).hexdigest()
            assert source["raw_status"] == "complete"


def test_a_clean_rewrite_from_the_same_manifest_shows_in_the_state_the_analytics_compare(
    spark: SparkSession, lake: Path
) -> None:
    lake_root = Lake(bucket="unused", root=lake.as_uri())
    before = analytics.lake_state(spark, lake_root, DAYS[2])

    run(clean, lake, DAYS[1])  # what another run's clean job does while the analytics read

    after = analytics.lake_state(spark, lake_root, DAYS[2])
    changed = {(e, d) for e in after for d in after[e] if after[e][d] != before[e][d]}
    assert changed == {(e, DAYS[1]) for e in ("pin", "geo", "user")}
    assert analytics.days_to_read(DAYS[2], after) == {e: list(DAYS) for e in ("pin", "geo", "user")}  # still ready


def test_a_day_drained_again_after_cleaning_must_be_cleaned_again(
    spark: SparkSession, lake: Path, write_raw: WriteRaw
) -> None:
    seed_day(write_raw, 1, [triple(1, "diy", "Chad"), triple(6, "diy", "Chad")])  # day 2 re-drained, one more pin

    with pytest.raises(MissingCleanDataError, match=rf"run the clean job for {every_entity('2026-11-23')} first"):
        run(analytics, lake, DAYS[2])

    run(clean, lake, DAYS[1])
    run(analytics, lake, DAYS[2])
    assert read_result(spark, lake, "popular_category_by_country", DAYS[2]) == [("Chad", "travel", 3)]
    assert read_result(spark, lake, "users_joined_by_year", DAYS[2]) == [(2017, 6)]


def redrain_same_objects(lake: Path, entity: str, day: date) -> None:
    """What a rerun of a finished day writes: the same objects, a manifest differing only in run metadata, and the
    rerun's quality gate of it."""
    path = lake / manifest_key(entity, day)
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "run_id": "rerun", "drained_at": "2026-11-26T06:00:00+00:00"}))
    gate_local_day(lake, day, [entity])


def test_a_day_drained_again_with_the_same_objects_stays_cleaned(spark: SparkSession, lake: Path) -> None:
    for entity in ("pin", "geo", "user"):
        redrain_same_objects(lake, entity, DAYS[1])

    run(analytics, lake, DAYS[2])

    assert read_result(spark, lake, "users_joined_by_year", DAYS[2]) == [(2017, 5)]


def test_a_source_written_before_the_data_identity_is_compared_by_the_manifest_text(lake: Path) -> None:
    source = lake / partition_prefix("clean", "geo", DAYS[0]) / SOURCE_NAME
    legacy = json.loads(source.read_text())
    del legacy["raw_data_sha256"]
    source.write_text(json.dumps(legacy))
    source.with_name(f".{SOURCE_NAME}.crc").unlink()  # Hadoop's local checksum of the text the clean job wrote
    run(analytics, lake, DAYS[1])  # the manifest text is the one it names

    redrain_same_objects(lake, "geo", DAYS[0])
    with pytest.raises(MissingCleanDataError, match=r"run the clean job for geo: 2026-11-22 first"):
        run(analytics, lake, DAYS[1])


def test_a_clean_partition_without_its_source_is_not_cleaned_until_cleaned_again(
    spark: SparkSession, lake: Path
) -> None:
    # a clean job killed between Spark's commit and _source.json (its _SUCCESS is newer than the raw manifest),
    # or a partition cleaned before clean jobs wrote _source.json
    source = lake / partition_prefix("clean", "user", DAYS[0]) / SOURCE_NAME
    source.unlink()
    source.with_name(f".{SOURCE_NAME}.crc").unlink(missing_ok=True)  # Hadoop's local checksum of it

    with pytest.raises(MissingCleanDataError, match=r"as of 2026-11-23: run the clean job for user: 2026-11-22 first"):
        run(analytics, lake, DAYS[1])
    assert not (lake / "analytics").exists()

    run(clean, lake, DAYS[0], "--entity", "user")  # what the clean job's retry does
    run(analytics, lake, DAYS[1])
    assert read_result(spark, lake, "users_joined_by_year", DAYS[1]) == [(2017, 2)]


def test_an_unfinished_or_partial_earlier_raw_day_is_named(lake: Path, write_raw: WriteRaw) -> None:
    (lake / partition_prefix("raw", "geo", DAYS[0]) / SUCCESS_NAME).unlink()  # a re-drain running or failed
    lines = [{"partition": 0, "offset": 0, "timestamp": T0 + 86_400_000, "key": None,
              "value": triple(1, "x", "y")["pin"]}]  # fmt: skip
    write_raw("pin", DAYS[1], [lines], status="partial")
    run(clean, lake, DAYS[1])  # cleaned from the partial manifest: up to date, but the day never completed

    with pytest.raises(MissingCleanDataError) as raised:
        run(analytics, lake, DAYS[2])
    message = str(raised.value)
    assert "raw days without _SUCCESS (a first drain has not finished, or failed): geo: 2026-11-22" in message
    assert "earlier raw days still partial (drained while open, never completed): pin: 2026-11-23" in message
    assert "run the clean job" not in message


def test_a_partial_earlier_day_accepted_as_final_counts(spark: SparkSession, lake: Path, write_raw: WriteRaw) -> None:
    lines = [{"partition": 0, "offset": 0, "timestamp": T0 + 86_400_000, "key": None,
              "value": triple(1, "diy", "Chad")["pin"]}]  # fmt: skip
    accepted = {"run_id": "ops", "accepted_at": "2026-11-26T08:00:00+00:00", "reason": "[0] starts at offset 7"}
    write_raw("pin", DAYS[1], [lines], status="partial", accepted_partial=accepted)
    run(clean, lake, DAYS[1])

    run(analytics, lake, DAYS[2])

    # pins 1 (diy, from the accepted day), 2 (art), 3-5 (travel)
    assert read_result(spark, lake, "popular_category_by_country", DAYS[2]) == [("Chad", "travel", 3)]
    # the day itself is complete, but the results include a day that never was
    assert published_status(lake, DAYS[2]) == "partial"


def test_the_day_itself_may_be_partial(spark: SparkSession, lake: Path, write_raw: WriteRaw) -> None:
    lines = [{"partition": 0, "offset": 0, "timestamp": T0 + 2 * 86_400_000, "key": None,
              "value": triple(3, "travel", "Chad")["pin"]}]  # fmt: skip
    write_raw("pin", DAYS[2], [lines], status="partial")
    run(clean, lake, DAYS[2])

    run(analytics, lake, DAYS[2])

    # pins 1 (diy), 2 (art) and 3 (travel): a tie broken alphabetically
    assert read_result(spark, lake, "popular_category_by_country", DAYS[2]) == [("Chad", "art", 1)]
    assert published_status(lake, DAYS[2]) == "partial"


# --- the lake's first day (LAKE_FIRST_DAY, --first-day) ---------------------------------------------------------------


def test_from_the_lakes_first_day_every_day_is_needed_even_before_the_first_drained_one() -> None:
    ready = ready_day()
    day, first_day = date(2026, 11, 6), date(2026, 11, 3)
    # a backfill run backwards: 6 and 5 are done, 3 and 4 not drained yet; 1 is before the lake's first day
    states = {date(2026, 11, 1): DayState(), date(2026, 11, 5): ready, day: ready}

    assert first_needed_day(day, {"pin": states}) == date(2026, 11, 5)
    assert not readiness(day, states, date(2026, 11, 5))  # by the first drained day: ready, without the days before
    assert first_needed_day(day, {"pin": states}, first_day) == first_day
    found = readiness(day, states, first_day)

    assert found.never_drained == [date(2026, 11, 3), date(2026, 11, 4)]
    assert not (found.not_cleaned or found.unfinished or found.partial)
    assert readiness_message(day, {"pin": found}, first_day).startswith(
        "days never drained: pin: 2026-11-03, 2026-11-04; backfill them first "
        f"({backfill('2026-11-03', '2026-11-04', '{}')}): each day from the lake's first day 2026-11-03 up to "
        "2026-11-06 needs raw/<entity>/dt=<day>/_manifest.json"
    )
    # a scratch run's lake: the backfill must drain that run's topics into its bucket, not the DAG's defaults
    scratch = backfill(
        "2026-11-03",
        "2026-11-04",
        '{"lake_bucket": "scratch-lake", "topic_prefix": "test-abc", "lake_first_day": "2026-11-03"}',
    )
    conf = run_conf("scratch-lake", "test-abc", first_day)
    assert f"backfill them first ({scratch})" in readiness_message(day, {"pin": found}, first_day, conf)
    five, four = date(2026, 11, 5), date(2026, 11, 4)
    lake = {
        "pin": {five: ready, day: ready},
        "geo": {four: ready, five: ready, day: ready},
        "user": {five: ready, day: ready},
    }
    # without a first day, from the first day any entity drained (geo's): pin and user lack it
    with pytest.raises(MissingCleanDataError, match="days never drained: pin: 2026-11-04; user: 2026-11-04; "):
        analytics.days_to_read(day, lake)
    assert analytics.days_to_read(day, lake, five) == {"pin": [five, day], "geo": [five, day], "user": [five, day]}


def test_a_new_lake_whose_earliest_days_are_not_drained_yet_fails_from_its_first_day(
    spark: SparkSession, tmp_path: Path, write_raw: WriteRaw
) -> None:
    # the newest day of a backfill drained and cleaned first (run backwards, or the first day's drain retried)
    seed_day(write_raw, 2, [triple(3, "travel", "Chad")])
    run(clean, tmp_path, DAYS[2])

    with pytest.raises(MissingCleanDataError) as raised:
        run(analytics, tmp_path, DAYS[2], "--first-day", DAYS[0].isoformat())

    message = str(raised.value)
    both = "2026-11-22, 2026-11-23"
    command = backfill("2026-11-22", "2026-11-23", '{"lake_first_day": "2026-11-22"}')  # the run's conf again
    assert message.startswith(
        f"days never drained: pin: {both}; geo: {both}; user: {both}; backfill them first "
        f"({command}): each day from the lake's first day 2026-11-22 up to 2026-11-24"
    )
    assert not (tmp_path / "analytics").exists()
    run(analytics, tmp_path, DAYS[2])  # without it: green, and silently without the two earlier days
    assert read_result(spark, tmp_path, "users_joined_by_year", DAYS[2]) == [(2017, 1)]


def test_days_before_the_lakes_first_day_are_not_read(spark: SparkSession, lake: Path, write_raw: WriteRaw) -> None:
    (lake / partition_prefix("clean", "geo", DAYS[0]) / SUCCESS_NAME).unlink()  # not ready, but not needed either

    run(analytics, lake, DAYS[2], "--first-day", DAYS[1].isoformat())

    # pins 1 (diy, day 2) and 3-5 (travel, day 3); pin 2 only drained on day 1, before the first day
    assert read_result(spark, lake, "popular_category_by_country", DAYS[2]) == [("Chad", "travel", 3)]
    assert read_result(spark, lake, "users_joined_by_year", DAYS[2]) == [(2017, 4)]


def test_a_first_day_after_the_day_is_refused_as_a_bad_argument(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        run(analytics, tmp_path, DAYS[0], "--first-day", DAYS[1].isoformat())

    assert exited.value.code == USAGE_EXIT_CODE
    assert "--first-day 2026-11-23 is after --date 2026-11-22" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(analytics, tmp_path, DAYS[0], "--first-day", "2026-11-31")
    assert "--first-day must be YYYY-MM-DD, got '2026-11-31'" in capsys.readouterr().err


def test_the_lakes_first_day_is_a_platform_setting() -> None:
    assert PlatformSettings.model_validate({"LAKE_FIRST_DAY": "2026-01-01"}).lake_first_day == date(2026, 1, 1)
    assert PlatformSettings.model_validate({"LAKE_FIRST_DAY": ""}).lake_first_day is None  # as compose passes it unset
    assert PlatformSettings.model_validate({}).lake_first_day is None
    with pytest.raises(ValidationError, match="LAKE_FIRST_DAY"):
        PlatformSettings.model_validate({"LAKE_FIRST_DAY": "2026-13-01"})


def test_only_the_days_readiness_checked_are_read() -> None:
    ready = ready_day()
    # a clean partition left before the lake's first drained day (its raw partitions deleted): never checked
    orphan = DayState(raw=None, clean_success=True, clean_source=None)
    d1, d2, d3 = (date(2026, 11, n) for n in (1, 2, 3))
    state = {entity: {d1: orphan, d2: ready, d3: ready} for entity in ("pin", "geo", "user")}

    assert analytics.days_to_read(d3, state) == {entity: [d2, d3] for entity in ("pin", "geo", "user")}
    with pytest.raises(MissingCleanDataError, match=r"days never drained: pin: 2026-11-01; geo: 2026-11-01"):
        analytics.days_to_read(d3, state, first_day=d1)  # from the lake's first day, d1 is needed and not drained
