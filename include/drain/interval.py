"""The data interval of a drain: one whole UTC day ``[start, end)``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from include.backfill import backfill_command
from include.days import midnight
from include.drain.errors import IntervalError, NoIntervalError
from include.lake import RawStatus

Status = RawStatus  # a drained day's status, as the lake records it
DAY = timedelta(days=1)


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise IntervalError(f"interval {name} {moment.isoformat()} has no timezone: pass an aware UTC datetime")
    return datetime.fromtimestamp(moment.timestamp(), UTC)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, as Kafka timestamps are."""
    return round(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Interval:
    """``[start, end)`` covering exactly one UTC day; the lake partition is ``dt=<start date>``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start, end = _as_utc(self.start, "start"), _as_utc(self.end, "end")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        if start != midnight(start.date()) or end - start != DAY:
            raise IntervalError(
                f"interval [{start.isoformat()}, {end.isoformat()}) is not one whole UTC day: "
                "the drain writes daily partitions and needs [D 00:00, D+1 00:00) UTC"
            )

    @classmethod
    def of_run(cls, start: datetime | None, end: datetime | None) -> Interval:
        """The interval of a DAG run, failing clearly when the run has none."""
        if start is None or end is None:
            raise NoIntervalError(
                "this run has no data interval (a manual run without a logical date): the drain needs the day "
                "to drain; trigger the run with a logical date (UI: keep the pre-filled logical date; REST: "
                "set logical_date) or use `airflow backfill create`"
            )
        return cls(start, end)

    @classmethod
    def for_day(cls, day: date) -> Interval:
        """The interval of one UTC day."""
        start = midnight(day)
        return cls(start, start + DAY)

    @property
    def day(self) -> date:
        """The partition date (``dt=``)."""
        return self.start.date()

    @property
    def start_ms(self) -> int:
        return epoch_ms(self.start)

    @property
    def end_ms(self) -> int:
        return epoch_ms(self.end)

    def closes_at(self, grace: timedelta) -> datetime:
        """When no more records of the interval are expected: its end plus the lateness grace."""
        return self.end + grace

    def status_at(self, now: datetime, grace: timedelta) -> Status:
        """``complete`` once the interval and its grace are over, ``partial`` before."""
        return "complete" if _as_utc(now, "now") >= self.closes_at(grace) else "partial"

    def seconds_to_wait(self, now: datetime, grace: timedelta) -> float:
        """How long a run should wait for late records: only between the end and the end plus grace.

        An interval still open (``now < end``) is drained at once as ``partial``; waiting
        makes sense only when the day is over and the grace is not.
        """
        now = _as_utc(now, "now")
        if now < self.end:
            return 0.0
        return max(0.0, (self.closes_at(grace) - now).total_seconds())


def refuse_open_day_slot(logical_date: datetime | None, interval: Interval, now: datetime) -> None:
    """Raise IntervalError for a run that holds its own day's midnight as logical date while that day is still open.

    Such a run (a manual run given ``D 00:00`` and the interval of D over REST; Airflow's backfill creates no run of a
    day not over) can only drain D as partial, and it holds the slot of D's scheduled run: once D is over the
    scheduler skips that run, so nothing drains D complete and the analytics of later days wait for it for good.
    """
    if logical_date is None or _as_utc(logical_date, "logical date") != interval.start:
        return
    if _as_utc(now, "now") >= interval.end:
        return
    day = interval.day
    raise IntervalError(
        f"this run's logical date {interval.start:%Y-%m-%dT%H:%MZ} is the slot of {day}'s scheduled run, and {day} is "
        f"not over: this run could only drain it partial, and the scheduler would then never create the run that "
        f"drains it complete. Delete this run; to drain {day} so far, trigger with a logical date that is not a "
        "midnight (the UI's default, now) and, over REST, data_interval_start/data_interval_end of the day"
    )


def refuse_other_midnight(
    logical_date: datetime | None, interval: Interval, dag_id: str, conf: Mapping[str, Any] | None = None
) -> None:
    """Raise IntervalError for a run whose logical date is a UTC midnight other than its interval's start.

    A scheduled daily run's logical date is its day's midnight, and Airflow keeps one run per logical
    date. A run given ``D 00:00`` that drains another day (a manual run gets the day before D) takes
    that slot: a past D's run can no longer be created, and a backfill of D clears this run and, keeping
    its interval, drains the other day again; a D still to come is skipped by the scheduler. Whatever
    the date and the run type, such a run is refused before any work. The backfill it suggests carries ``conf``, the
    run's own (``include.backfill.run_conf``).
    """
    if logical_date is None:
        return
    moment = _as_utc(logical_date, "logical date")
    if moment.time() != datetime.min.time() or moment == interval.start:
        return
    slot, day = moment.date(), interval.day
    raise IntervalError(
        f"this run's logical date {moment:%Y-%m-%dT%H:%MZ} is the logical date of the scheduled run of {slot}, "
        f"but the run drains {day}: while it exists, {slot} has no run of its own (the scheduler skips a "
        f"{slot} still to come, and a backfill of {slot} reuses this run, interval and all). Delete this run, "
        f"then drain the day you meant with a backfill, for {day}: `{backfill_command(day, day, dag_id, conf)}`, or "
        "trigger with a logical date that is not a midnight (the UI's default, now) and, over REST, "
        f"data_interval_start/data_interval_end of the day. {slot} itself is drained by its scheduled run once it "
        "is over, or, when it is over already, by the same backfill for that day"
    )
