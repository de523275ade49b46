"""The analytics of a day as one unit: ``analytics/_published/dt=<day>/_manifest.json``.

The analytics job deletes a day's publication before it replaces the first of its nine results, and writes it
again after the last, naming the run, each result's row count, and the raw data identity of every clean day the
results were computed from. A reader that needs the nine as one unit reads the publication first and again after
the results: the same text both times means no rerun of the day touched them in between; none means a rerun is
writing them (or a job died halfway, and its retry writes them all again).

The inputs also tell when later days' analytics are out of date. The analytics of a day are computed once: when an
earlier day is drained again with other data (and cleaned), the analytics of the days after it stay as they were.
The job of a day therefore compares the publications of later days with the data it has just read, and names the
days whose analytics used other data (``stale_later_days``). It does so only when its own data differs from what
its day's previous publication read (or there was none): a rerun over the same data changes nothing for later days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveInt

from include.backfill import ANALYTICS_TASK_ID, clear_analytics_command, consecutive_runs
from include.days import midnight
from include.lake import RawStatus
from include.records import Entity

DayInputs = dict[Entity, dict[date, str]]  # per entity, per clean day read: the raw data identity it was cleaned from


class Publication(BaseModel):
    """What the analytics job of ``day`` wrote, and from which data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: date
    run_id: str
    attempt: PositiveInt
    logical_date: datetime | None = None  # of the Airflow run (how `airflow tasks clear` selects it); None: no run
    published_at: datetime
    first_day: date | None  # the lake's first day the job was given (--first-day), if any
    raw_status: RawStatus  # of the raw data the results include: partial when any day read is (analytics.read_status)
    results: dict[str, NonNegativeInt]  # each result's name and row count
    inputs: DayInputs


def changed_days(
    publication: Publication, current: Mapping[Entity, Mapping[date, str]], since: date | None, through: date
) -> list[tuple[Entity, date]]:
    """The (entity, day) inputs of ``publication`` that differ from ``current`` (the clean days read now, each with
    its raw data identity), over the days ``current`` speaks for: from ``since`` (None: any) up to ``through``.

    A day the publication read that is gone now, or read now but not then, counts as changed, unless it is before
    the lake's first day the publication was computed with (it did not need it).
    """
    first = max(filter(None, (since, publication.first_day)), default=date.min)
    changed = []
    for entity in sorted(set(current) | set(publication.inputs)):
        now, then = current.get(entity, {}), publication.inputs.get(entity, {})
        for day in sorted(set(now) | set(then)):
            if first <= day <= through and now.get(day) != then.get(day):
                changed.append((entity, day))
    return changed


class Stale(NamedTuple):
    """A later day's publication computed from other data than the lake holds now, and the inputs that differ."""

    publication: Publication
    changed: list[tuple[Entity, date]]


def stale_later_days(
    later: Iterable[Publication], current: Mapping[Entity, Mapping[date, str]], since: date | None, through: date
) -> dict[date, Stale]:
    """Of the publications of days after ``through``, those computed from other data than ``current`` (see
    ``changed_days``), each with the inputs that differ."""
    stale = {}
    for publication in later:
        if publication.day > through and (changed := changed_days(publication, current, since, through)):
            stale[publication.day] = Stale(publication, changed)
    return dict(sorted(stale.items()))


def day_ranges(days: Iterable[date]) -> str:
    """``2026-11-01..2026-11-03, 2026-11-05``: days as runs of consecutive days."""
    return ", ".join(str(first) if first == last else f"{first}..{last}" for first, last in consecutive_runs(days))


def recompute_commands(publications: Iterable[Publication]) -> tuple[list[str], list[str]]:
    """The ``airflow tasks clear`` commands that compute the analytics of ``publications`` again, and the run ids of
    those that name no logical date (written before it was recorded, or by a job run outside Airflow).

    Airflow selects runs by logical date. A scheduled or backfilled run has its day's midnight, so consecutive days
    share one command over their range (which also clears a run triggered by hand within that range: it computes its
    own day again); any other run, one triggered by hand, is cleared at its own logical date unless a range has it.
    """
    midnights, others, unknown = [], set(), []
    for publication in publications:
        if publication.logical_date is None:
            unknown.append(publication.run_id)
        elif publication.logical_date == midnight(publication.day):
            midnights.append(publication.day)
        else:
            others.add(publication.logical_date)
    ranges = consecutive_runs(midnights)
    covered = [(midnight(first), midnight(last)) for first, last in ranges]
    alone = sorted(at for at in others if not any(low <= at <= high for low, high in covered))
    commands = [clear_analytics_command(first, last) for first, last in ranges]
    return commands + [clear_analytics_command(at, at) for at in alone], sorted(set(unknown))


def stale_message(day: date, stale: Mapping[date, Stale]) -> str:
    """The warning naming the later days whose analytics are out of date, the data that differs, and the commands
    that compute them again."""
    differing: dict[Entity, set[date]] = {}
    for _, changed in stale.values():
        for entity, input_day in changed:
            differing.setdefault(entity, set()).add(input_day)
    what = "; ".join(f"{entity} {day_ranges(days)}" for entity, days in sorted(differing.items()))
    commands, unknown = recompute_commands(publication for publication, _ in stale.values())
    how = " and ".join(commands)
    if unknown:
        runs = ", ".join(unknown)
        how += f"{' and, ' if how else ''}in the runs {runs} (no logical date recorded), clear {ANALYTICS_TASK_ID}"
    return (
        f"the analytics of {len(stale)} later days ({day_ranges(stale)}) were computed from other data than the "
        f"lake holds now up to {day} ({what}: changed since, or read by only one of them). A run of one day changes "
        f"nothing else, so they stay as they were; to compute them again: {how}"
    )
