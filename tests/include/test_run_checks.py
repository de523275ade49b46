"""The checks of a drain DAG run before any work: its day to drain and its run conf (plain values, no Airflow)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from enum import Enum

import pytest

from include.drain import DrainError, Interval, IntervalError, NoIntervalError
from include.drain.run_checks import UnknownConfError, refuse_unknown_conf, run_interval

PARAMS = ["topic_prefix", "lake_bucket", "lateness_grace_minutes", "max_quarantine_share"]
DAY_START = datetime(2026, 11, 25, tzinfo=UTC)  # the day 2026-11-25
DAY_END = datetime(2026, 11, 26, tzinfo=UTC)
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


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
@pytest.mark.parametrize("run_type", ["manual", "scheduled", "backfill"])
def test_a_run_without_interval_fails_saying_so(start, end, run_type):
    with pytest.raises(NoIntervalError, match=r"this run has no data interval .*trigger the run with a logical date"):
        run_interval(start, end, run_type=run_type, logical_date=None, now=NOW)


def test_a_scheduled_run_drains_its_interval():
    # a scheduled run's logical date is its own interval's start
    interval = run_interval(DAY_START, DAY_END, run_type="scheduled", logical_date=DAY_START, now=NOW)
    assert (interval.start, interval.end, interval.day) == (DAY_START, DAY_END, date(2026, 11, 25))


def test_a_scheduled_run_is_not_checked_for_a_future_midnight():
    # only manual runs can steal a slot: a (hypothetical) scheduled run with a later midnight passes
    later = datetime(2026, 12, 5, tzinfo=UTC)
    assert run_interval(DAY_START, DAY_END, run_type="scheduled", logical_date=later, now=NOW).day == date(2026, 11, 25)


@pytest.mark.parametrize(
    "logical_date",
    [
        datetime(2026, 11, 26, 9, 30, tzinfo=UTC),  # the UI's default, "now"
        datetime(2026, 11, 27, 6, 15, tzinfo=UTC),  # a future moment, but not a midnight
        DAY_START,  # the interval's own start
        datetime(2026, 11, 20, tzinfo=UTC),  # a past midnight: that scheduled run is not to come
        None,
    ],
)
def test_a_manual_run_not_on_a_scheduled_slot_to_come_is_accepted(logical_date):
    interval = run_interval(DAY_START, DAY_END, run_type="manual", logical_date=logical_date, now=NOW)
    assert interval == Interval(DAY_START, DAY_END)


@pytest.mark.parametrize(
    ("logical_date", "slot_day"),
    [
        (datetime(2026, 11, 26, tzinfo=UTC), "2026-11-26"),  # today's midnight
        (datetime(2026, 12, 5, tzinfo=UTC), "2026-12-05"),  # a future midnight
        (datetime(2026, 12, 5, 1, tzinfo=timezone(timedelta(hours=1))), "2026-12-05"),  # the same, given in UTC+1
    ],
)
def test_a_manual_run_on_a_scheduled_slot_to_come_is_refused(logical_date, slot_day):
    with pytest.raises(IntervalError) as raised:
        run_interval(DAY_START, DAY_END, run_type="manual", logical_date=logical_date, now=NOW)
    message = str(raised.value)
    assert f"logical date {slot_day}T00:00Z is the logical date of the scheduled run of {slot_day}" in message
    assert "--from-date 2026-11-25 --to-date 2026-11-25" in message  # how to drain the day instead


def test_an_interval_that_is_not_one_utc_day_is_refused_for_any_run():
    with pytest.raises(IntervalError, match="not one whole UTC day"):
        run_interval(DAY_START, DAY_START + timedelta(hours=1), run_type="scheduled", logical_date=DAY_START, now=NOW)


def test_a_naive_logical_date_of_a_manual_run_is_refused():
    with pytest.raises(IntervalError, match="logical date 2026-11-26T09:30:00 has no timezone"):
        run_interval(DAY_START, DAY_END, run_type="manual", logical_date=datetime(2026, 11, 26, 9, 30), now=NOW)


def test_the_run_type_may_be_a_string_enum_as_airflow_passes_it():
    class RunType(str, Enum):  # noqa: UP042 -- the shape of Airflow's DagRunType (str, Enum)
        MANUAL = "manual"
        SCHEDULED = "scheduled"

    midnight = datetime(2026, 11, 26, tzinfo=UTC)
    with pytest.raises(IntervalError):
        run_interval(DAY_START, DAY_END, run_type=RunType.MANUAL, logical_date=midnight, now=NOW)
    assert run_interval(DAY_START, DAY_END, run_type=RunType.SCHEDULED, logical_date=midnight, now=NOW).day == (
        date(2026, 11, 25)
    )
