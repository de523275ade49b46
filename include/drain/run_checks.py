"""Checks of a drain DAG run before any work: its day to drain and its run conf.

Plain values in, the project's errors out; nothing here imports Airflow. The DAG pulls the
values from its context and turns these errors into permanent task failures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from include.drain.errors import IntervalError, UnknownConfError
from include.drain.interval import Interval, refuse_open_day_slot, refuse_other_midnight


def run_interval(
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    *,
    logical_date: datetime | None,
    dag_id: str,
    conf: Mapping[str, Any] | None = None,
    first_day: date | None = None,
    run_type: str | None = None,
    now: datetime | None = None,
) -> Interval:
    """The day a run drains: its data interval, checked.

    Raises NoIntervalError when the run has no interval, IntervalError when the interval is not one
    whole UTC day, when the logical date is a midnight other than the interval's start, of any run
    type (see ``refuse_other_midnight``; ``dag_id`` and ``conf`` go into the backfill command it suggests),
    when it is the interval's start while the day is not over at ``now`` (``refuse_open_day_slot``; not for a
    ``scheduled`` or ``backfill`` run, which Airflow creates only once the day is over, whatever this worker's clock
    says), or when
    the lake's ``first_day`` comes after the day (its analytics would read nothing, after the drain and cleaning).
    """
    interval = Interval.of_run(data_interval_start, data_interval_end)
    refuse_other_midnight(logical_date, interval, dag_id, conf)
    if run_type not in ("scheduled", "backfill"):
        refuse_open_day_slot(logical_date, interval, now or datetime.now(UTC))
    if first_day is not None and first_day > interval.day:
        raise IntervalError(
            f"the run's lake_first_day {first_day} is after the day it drains, {interval.day}: the analytics of "
            f"{interval.day} would read no day. Give this day's run a lake_first_day of {interval.day} or earlier "
            "(left out: LAKE_FIRST_DAY; null: the first day any entity drained)"
        )
    return interval


def refuse_unknown_conf(conf: Mapping[str, Any] | None, params: Iterable[str]) -> None:
    """Raise UnknownConfError naming the conf keys that are not among ``params``, and the params.

    ``params`` are the DAG's declared param names, not the run's: Airflow merges every conf key
    into the run's params, so those would accept any key.
    """
    declared = set(params)
    unknown = sorted(set(conf or {}) - declared)
    if unknown:
        raise UnknownConfError(f"unknown run conf keys {unknown}; the params are {sorted(declared)}")
