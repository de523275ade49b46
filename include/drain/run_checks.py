"""Checks of a drain DAG run before any work: its day to drain and its run conf.

Plain values in, the project's errors out; nothing here imports Airflow. The DAG pulls the
values from its context and turns these errors into permanent task failures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from include.drain.errors import UnknownConfError
from include.drain.interval import Interval, refuse_scheduled_logical_date

MANUAL = "manual"
"""The run type of a run triggered by hand (UI or REST), as Airflow names it."""


def run_interval(
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    *,
    run_type: str,
    logical_date: datetime | None,
    now: datetime,
) -> Interval:
    """The day a run drains: its data interval, checked.

    Raises NoIntervalError when the run has no interval, IntervalError when the interval is not one
    whole UTC day or when a manual run holds the logical date of a scheduled run still to come
    (see ``refuse_scheduled_logical_date``). Scheduled runs and backfills are not checked for the latter:
    their logical date is their own slot.
    """
    interval = Interval.of_run(data_interval_start, data_interval_end)
    if run_type == MANUAL:
        refuse_scheduled_logical_date(logical_date, interval, now)
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
