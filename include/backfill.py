"""The Airflow commands the project's messages print: run a range of days again, whole or only their analytics."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from include.days import midnight

DAG_ID = "pinterest_daily"  # the DAG that drains and cleans each day (dags/pinterest_daily.py)
ANALYTICS_TASK_ID = "spark_analytics"  # its last task: the analytics as of the run's day
CLEAN_TASK_ID = "spark_clean"  # cleans the run's day, before the analytics


def backfill_command(first: date, last: date, dag_id: str = DAG_ID, conf: Mapping[str, Any] | None = None) -> str:
    """``airflow backfill create`` over ``first`` to ``last`` (both inclusive), one day at a time, with the runs'
    ``conf`` (none: the DAG's defaults).

    The days are given as their UTC midnights, offset and all: Airflow reads a bare date in its ``[core]
    default_timezone``, which would miss the runs of UTC days under any other zone.

    ``--reprocess-behavior completed`` redoes days that already have a finished run, and ``--dag-run-conf`` (``'{}'``
    too) replaces the conf of a run it reuses: given none, Airflow leaves it as it was (a scratch ``lake_bucket``,
    say).
    """
    return (
        f"airflow backfill create --dag-id {dag_id} --max-active-runs 1 --reprocess-behavior completed "
        f"--dag-run-conf {shlex.quote(json.dumps(dict(conf or {})))} "
        f"--from-date {_instant(first)} --to-date {_instant(last)}"
    )


def run_conf(
    bucket: str | None, topic_prefix: str | None, first_day: date | None, given: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The conf a backfill that a run asks for repeats: its lake's bucket and its topics as the run resolved them (left
    out when not known: a lake under --lake-root, a job run by hand), its first day (null: none, which is not the DAG's
    default when LAKE_FIRST_DAY is set), and the rest of the conf the run was ``given`` but ``accept_partial``: keeping
    a partial day as final is decided day by day, by the operator, never repeated by a suggested command.

    Give ``given`` only for a backfill of the run's own day (its thresholds are judgements of that day), not for other
    days that the run finds missing."""
    resolved: dict[str, str | None] = {"lake_bucket": bucket, "topic_prefix": topic_prefix}
    known = {name: value for name, value in resolved.items() if value} | {
        "lake_first_day": first_day.isoformat() if first_day else None
    }
    own = {*resolved, "lake_first_day", "accept_partial"}
    repeated = {name: value for name, value in (given or {}).items() if name not in own}
    return known | repeated


def clear_clean_command(first: date | datetime, last: date | datetime, dag_id: str = DAG_ID) -> str:
    """``airflow tasks clear`` of the clean task and the tasks after it (the analytics) in the runs whose logical date
    is from ``first`` to ``last``, selected as ``clear_analytics_command`` selects them: those days are cleaned again
    from the raw data they hold now, and their analytics computed again."""
    return _clear_command(CLEAN_TASK_ID, first, last, dag_id) + " --downstream"


def clear_analytics_command(first: date | datetime, last: date | datetime, dag_id: str = DAG_ID) -> str:
    """``airflow tasks clear`` of the analytics task in the runs whose logical date is from ``first`` to ``last``
    (both inclusive; a date is its midnight, the logical date of that day's scheduled or backfilled run): they
    compute again, each with its run's conf, and nothing else reruns. Airflow lists the task instances and asks
    before it clears them.

    Airflow 3.3 matches ``--task-regex`` as a substring of the task ids (``SerializedDAG.partial_subset``), not as a
    regex: ``^spark_analytics$`` would match no task. The id alone matches only that task, either way.
    """
    return _clear_command(ANALYTICS_TASK_ID, first, last, dag_id)


def _clear_command(task_id: str, first: date | datetime, last: date | datetime, dag_id: str) -> str:
    dates = f"--start-date {_instant(first)} --end-date {_instant(last)}"
    return f"airflow tasks clear {dag_id} --task-regex {task_id} {dates}"


def _instant(moment: date | datetime) -> str:
    """A day as its UTC midnight, or a moment, in ISO 8601 with its offset (which Airflow's CLI keeps)."""
    return (moment if isinstance(moment, datetime) else midnight(moment)).isoformat()


def day_ranges(days: Iterable[date]) -> str:
    """``days`` for a reader, in order: a run of three or more consecutive days as ``first..last``, others one by
    one (``2026-11-01..2026-11-30, 2026-12-02``)."""
    parts: list[str] = []
    for first, last in consecutive_runs(days):
        span = (last - first).days
        parts += [f"{first}..{last}"] if span >= 2 else [str(first + timedelta(days=n)) for n in range(span + 1)]
    return ", ".join(parts)


def consecutive_runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """``days`` as runs of consecutive days, (first, last) of each in order: one command per run."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
