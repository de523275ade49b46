"""UTC days: the dates from one day to another, and the midnight that starts a day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last``, both included; ValueError when ``last`` is before ``first``."""
    if last < first:
        raise ValueError(f"the last day {last} is before the first day {first}")
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def midnight(day: date) -> datetime:
    """The UTC midnight that starts ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def midnight_ms(day: date) -> int:
    """``midnight(day)`` in epoch milliseconds (Kafka's timestamps)."""
    return int(midnight(day).timestamp() * 1000)
