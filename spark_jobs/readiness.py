"""Whether the analytics of a day may run: the rules on what the lake holds of each entity's days (plain Python).

Every day from the lake's first day (without one: the first day any entity drained) up to the analytics' day must be
drained (raw manifest and ``_SUCCESS``), the earlier ones complete (or a partial day accepted as final), and cleaned
from the raw data the day holds now (the clean partition's ``_SUCCESS`` and ``_source.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from include.backfill import backfill_command, clear_clean_command, consecutive_runs, day_ranges
from include.days import days_between
from include.records import Entity
from spark_jobs.manifest import Manifest, cleaned_from


class MissingCleanDataError(FileNotFoundError):
    """A day the analytics need is not ready: never drained, its drain unfinished or partial, or not cleaned from it."""


@dataclass(frozen=True)
class DayState:
    """What the lake holds of one entity's day, as far as the analytics' readiness goes."""

    raw: Manifest | None = None  # None when the day was never drained
    raw_success: bool = False
    clean_success: bool = False
    clean_source: str | None = None  # the clean partition's _source.json (unique to each clean write)
    gate_refusal: str | None = None  # why its _dq.json keeps the raw data from being cleaned (read when not cleaned)

    @property
    def cleaned(self) -> bool:
        """Whether the clean partition is whole and was cleaned from the raw data the day holds now."""
        return (
            self.raw is not None
            and self.clean_success
            and self.clean_source is not None
            and cleaned_from(self.clean_source, self.raw)
        )


@dataclass(frozen=True)
class Readiness:
    """The days, up to the analytics' day, that keep an entity's data from being used."""

    never_drained: list[date] = field(default_factory=list)
    not_cleaned: list[date] = field(default_factory=list)
    gate_refused: dict[date, str] = field(default_factory=dict)  # not cleaned since the gate did not pass: why
    unfinished: list[date] = field(default_factory=list)
    partial: list[date] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.never_drained or self.not_cleaned or self.gate_refused or self.unfinished or self.partial)


def first_needed_day(day: date, lake: Mapping[Entity, Mapping[date, DayState]], first_day: date | None = None) -> date:
    """The first day the analytics of ``day`` need: the lake's first day if given, else the first day any entity
    has drained (``day`` itself when none is).

    One day for every entity: a run drains every entity of its day, so a day drained for one entity and not for
    another (its partition deleted to be drained again, say) is a day that entity is missing, not one before it.
    """
    if first_day is not None:
        return first_day
    drained = (d for states in lake.values() for d, state in states.items() if d <= day and state.raw is not None)
    return min(drained, default=day)


def readiness(day: date, states: Mapping[date, DayState], first: date) -> Readiness:
    """Check ``day`` and every day before it since ``first`` (``first_needed_day``) in one entity's ``states``.

    Without a lake's first day, a day before the first drained one is not needed: but when the earliest days of a
    new lake are drained last (a backfill run backwards, or whose first day's drain waits for a retry while later
    days run), the first drained day is a later one, and the days before it are left out without a word.

    Each needs a raw manifest: the drain writes one for every day it drains, an empty day too, so a day without
    one was never drained (a run the scheduler skipped, or one that never got to its drain) and is named as such.
    A drained day needs its raw ``_SUCCESS`` (else unfinished: a drain is running, failed or was killed), and a
    clean partition with ``_SUCCESS`` and a ``_source.json`` naming the raw data the day has now (else not cleaned:
    never cleaned, re-drained with other data after cleaning, or without ``_source.json``, which the clean job
    writes after Spark's commit, so a job killed in between, or a partition cleaned before clean jobs wrote it,
    needs cleaning again).
    A day before ``day`` must be complete: a partial one was drained while open and its completing run never
    came (``day`` itself may be partial: the run of an open day), unless it was accepted as final (Kafka could no
    longer complete it).
    """
    found = Readiness()
    for needed_day in days_between(first, day):
        state = states.get(needed_day, DayState())
        if state.raw is None:
            found.never_drained.append(needed_day)
            continue
        if not state.raw_success:
            found.unfinished.append(needed_day)
            continue
        if needed_day < day and state.raw.status == "partial" and not state.raw.accepted_partial:
            found.partial.append(needed_day)
        if state.cleaned:
            continue
        if state.gate_refusal is not None:
            found.gate_refused[needed_day] = state.gate_refusal
        else:
            found.not_cleaned.append(needed_day)
    return found


def readiness_message(
    day: date,
    problems: Mapping[Entity, Readiness],
    first_day: date | None = None,
    conf: Mapping[str, str | None] | None = None,
) -> str:
    """The error naming, per kind of problem, each entity's days and what to do; its backfill commands carry
    ``conf``, the conf of the run that asks (its bucket and topics: a scratch run's backfill drains its own)."""

    def listing(days_of: Callable[[Readiness], list[date]]) -> str:
        return "; ".join(f"{e}: {day_ranges(days_of(r))}" for e, r in problems.items() if days_of(r))

    parts = []
    if text := listing(lambda r: r.never_drained):
        # a run drains every entity of its day: one backfill per run of consecutive days, over all entities
        missing = {d for found in problems.values() for d in found.never_drained}
        commands = " and ".join(backfill_command(first, last, conf=conf) for first, last in consecutive_runs(missing))
        since = f"the lake's first day {first_day}" if first_day else "the lake's first drained day"
        parts.append(
            f"days never drained: {text}; backfill them first ({commands}): each day from {since} up to {day} "
            "needs raw/<entity>/dt=<day>/_manifest.json (an empty day gets an empty complete one), so these were "
            "skipped (by the scheduler, or while the DAG was paused), or their first drain has not written its "
            "manifest yet"
        )
    if text := listing(lambda r: r.not_cleaned):
        # a clean job cleans every entity of its day: one clear per run of consecutive days, over all entities
        stale = {d for found in problems.values() for d in found.not_cleaned}
        clears = " and ".join(clear_clean_command(first, last) for first, last in consecutive_runs(stale))
        parts.append(
            f"clean data is incomplete as of {day}: run the clean job for {text} first ({clears}, which clears the "
            "scheduled or backfilled run of each day; a manual run's spark_clean is cleared with its downstream "
            f"tasks in the UI): every drained day up to {day} needs clean/<entity>/dt=<day>/ with _SUCCESS and a "
            "_source.json naming the raw data the day has now"
        )
    if refused := [f"{e} {d}: {why}" for e, r in problems.items() for d, why in r.gate_refused.items()]:
        parts.append(
            "days the quality gate has not passed, so their clean job refuses them (clearing spark_clean alone "
            f"does not help): {'; '.join(refused)}"
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
