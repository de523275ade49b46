"""The checks of a drain DAG run before any work: its day to drain and its run conf (plain values, no Airflow)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from include.backfill import backfill_command
from include.drain import DrainError, Interval, IntervalError, NoIntervalError
from include.drain.run_checks import UnknownConfError, refuse_unknown_conf, run_interval

PARAMS = ["topic_prefix", "lake_bucket", "lateness_grace_minutes", "max_quarantine_share"]
DAY_START = datetime(2026, 11, 25, tzinfo=UTC)  # the day 2026-11-25
DAY_END = datetime(2026, 11, 26, tzinfo=UTC)
DAG_ID = "pinterest_daily"


def test_a_misspelt_conf_key_is_refused_naming_it_and_the_params():
    with pytest.raises(UnknownConfError) as raised:
        refuse_unknown_conf({"lake_buket": "x", "topic_prefix": "test-abc"}, PARAMS)
    assert str(raised.value) == (
        "unknown run conf keys ['lake_buket']; the params are "
        "['lake_bucket', 'lateness_grace_minutes', 'max_quarantine_share', 'topic_prefix']"
    )
    assert isinstance(raised.value, DrainError)


def test_every_unknown_conf_key_is_named_sorted():
    with pytest.raises(UnknownConfError, match=r"unknown run conf keys \['bucket', 'prefix'\];"):
        refuse_unknown_conf({"prefix": "a", "bucket": "b"}, PARAMS)


@pytest.mark.parametrize("conf", [None, {}, {"lake_bucket": "scratch"}, dict.fromkeys(PARAMS, 1)])
def test_a_conf_of_declared_params_only_or_none_is_accepted(conf):
    assert refuse_unknown_conf(conf, PARAMS) is None


def test_params_may_be_any_iterable_of_names():
    refuse_unknown_conf({"lake_bucket": "x"}, iter(PARAMS))
    refuse_unknown_conf({"lake_bucket": "x"}, dict.fromkeys(PARAMS))  # a mapping iterates over its names
    with pytest.raises(UnknownConfError, match=r"\['x'\]"):
        refuse_unknown_conf({"x": 1}, dict.fromkeys(PARAMS))


@pytest.mark.parametrize(("start", "end"), [(None, None), (DAY_START, None), (None, DAY_END)])
def test_a_run_without_interval_fails_saying_so(start, end):
    with pytest.raises(NoIntervalError, match=r"this run has no data interval .*trigger the run with a logical date"):
        run_interval(start, end, logical_date=None, dag_id=DAG_ID)


def test_a_scheduled_run_drains_its_interval():
    # a scheduled run's (and a backfill run's) logical date is its own interval's start
    interval = run_interval(DAY_START, DAY_END, logical_date=DAY_START, dag_id=DAG_ID)
    assert (interval.start, interval.end, interval.day) == (DAY_START, DAY_END, date(2026, 11, 25))


@pytest.mark.parametrize(
    "logical_date",
    [
        datetime(2026, 11, 26, 9, 30, tzinfo=UTC),  # the UI's default, "now"
        datetime(2026, 11, 27, 6, 15, tzinfo=UTC),  # a future moment, but not a midnight
        datetime(2026, 11, 20, 0, 0, 1, tzinfo=UTC),  # a second after a past midnight
        DAY_START,  # the interval's own start
        datetime(2026, 11, 25, 1, tzinfo=timezone(timedelta(hours=1))),  # the same, given in UTC+1
        datetime(2026, 11, 20, tzinfo=timezone(timedelta(hours=-5))),  # a local midnight, 05:00 UTC: no slot
        None,
    ],
)
def test_a_run_whose_logical_date_is_no_other_midnight_is_accepted(logical_date):
    assert run_interval(DAY_START, DAY_END, logical_date=logical_date, dag_id=DAG_ID) == Interval(DAY_START, DAY_END)


@pytest.mark.parametrize(
    ("logical_date", "slot_day"),
    [
        (datetime(2026, 11, 26, tzinfo=UTC), "2026-11-26"),  # the interval's end: what Airflow infers from it
        (datetime(2026, 11, 20, tzinfo=UTC), "2026-11-20"),  # a past midnight
        (datetime(2025, 3, 1, tzinfo=UTC), "2025-03-01"),  # a long past one
        (datetime(2999, 12, 5, tzinfo=UTC), "2999-12-05"),  # a future one
        (datetime(2026, 11, 20, 1, tzinfo=timezone(timedelta(hours=1))), "2026-11-20"),  # given in UTC+1
    ],
)
def test_a_midnight_other_than_the_intervals_start_is_refused_whatever_the_date(logical_date, slot_day):
    with pytest.raises(IntervalError) as raised:
        run_interval(DAY_START, DAY_END, logical_date=logical_date, dag_id=DAG_ID)
    message = str(raised.value)
    assert f"logical date {slot_day}T00:00Z is the logical date of the scheduled run of {slot_day}" in message
    assert "but the run drains 2026-11-25" in message and "Delete this run" in message
    # how to drain the day instead (the command itself: tests/include/test_backfill.py), and the slot's own day
    assert f"`{backfill_command(date(2026, 11, 25), date(2026, 11, 25), DAG_ID)}`" in message
    assert f"{slot_day} itself is drained by its scheduled run once it is over" in message


def test_the_midnight_refusal_suggests_a_backfill_with_the_runs_own_conf():
    conf = {"lake_bucket": "scratch", "topic_prefix": "test-abc", "lake_first_day": None}
    with pytest.raises(IntervalError) as raised:
        run_interval(DAY_START, DAY_END, logical_date=datetime(2026, 11, 20, tzinfo=UTC), dag_id=DAG_ID, conf=conf)
    assert (
        """--dag-run-conf '{"lake_bucket": "scratch", "topic_prefix": "test-abc", "lake_first_day": null}' """
        "--from-date 2026-11-25T00:00:00+00:00 --to-date 2026-11-25T00:00:00+00:00"
    ) in str(raised.value)


def test_an_interval_that_is_not_one_utc_day_is_refused_for_any_run():
    with pytest.raises(IntervalError, match="not one whole UTC day"):
        run_interval(DAY_START, DAY_START + timedelta(hours=1), logical_date=DAY_START, dag_id=DAG_ID)


def test_a_naive_logical_date_is_refused():
    with pytest.raises(IntervalError, match="logical date 2026-11-26T09:30:00 has no timezone"):
        run_interval(DAY_START, DAY_END, logical_date=datetime(2026, 11, 26, 9, 30), dag_id=DAG_ID)


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 25, 9, 30, tzinfo=UTC),  # during the day
        datetime(2026, 11, 24, 23, 0, tzinfo=UTC),  # before it (a future day's midnight and interval)
        DAY_END - timedelta(microseconds=1),
    ],
)
def test_a_run_holding_its_open_days_midnight_is_refused(now):
    """It could only drain the day partial, and the scheduler would skip the day's own run once it is over: the day
    would stay partial for good."""
    with pytest.raises(IntervalError) as raised:
        run_interval(DAY_START, DAY_END, logical_date=DAY_START, dag_id=DAG_ID, run_type="manual", now=now)
    message = str(raised.value)
    assert "logical date 2026-11-25T00:00Z is the slot of 2026-11-25's scheduled run, and 2026-11-25 is not over" in (
        message
    )
    assert "trigger with a logical date that is not a midnight" in message


@pytest.mark.parametrize(
    ("logical_date", "now"),
    [
        (DAY_START, DAY_END),  # the scheduled run, created once the day is over
        (DAY_START, DAY_END + timedelta(days=30)),  # a backfill of a past day
        (datetime(2026, 11, 25, 9, 30, tzinfo=UTC), datetime(2026, 11, 25, 9, 30, tzinfo=UTC)),  # today, so far
        (None, datetime(2026, 11, 25, 9, 30, tzinfo=UTC)),
    ],
)
def test_an_open_day_without_its_midnight_or_a_closed_day_with_it_is_accepted(logical_date, now):
    interval = run_interval(DAY_START, DAY_END, logical_date=logical_date, dag_id=DAG_ID, now=now)
    assert interval == Interval(DAY_START, DAY_END)


@pytest.mark.parametrize("run_type", ["scheduled", "backfill"])
def test_a_scheduled_or_backfill_run_is_not_refused_by_a_worker_clock_behind_the_schedulers(run_type):
    # Airflow creates them once the day is over; a worker whose clock lags may still see the day open
    lagging = DAY_END - timedelta(seconds=3)
    run = run_interval(DAY_START, DAY_END, logical_date=DAY_START, dag_id=DAG_ID, run_type=run_type, now=lagging)
    assert run == Interval(DAY_START, DAY_END)


def test_a_lake_first_day_after_the_runs_day_is_refused_before_any_work():
    with pytest.raises(IntervalError) as raised:
        run_interval(DAY_START, DAY_END, logical_date=DAY_START, dag_id=DAG_ID, first_day=date(2026, 11, 26))
    assert str(raised.value).startswith(
        "the run's lake_first_day 2026-11-26 is after the day it drains, 2026-11-25: the analytics of 2026-11-25 "
        "would read no day"
    )
    for first_day in (date(2026, 11, 25), date(2026, 1, 1), None):
        assert run_interval(DAY_START, DAY_END, logical_date=DAY_START, dag_id=DAG_ID, first_day=first_day)
