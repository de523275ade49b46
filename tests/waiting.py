"""Waiting for a condition instead of sleeping: tests poll what they need and fail naming it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def wait_until(
    check: Callable[[], bool],
    what: str,
    timeout_s: float = 30,
    ignoring: tuple[type[BaseException], ...] = (),
) -> None:
    """Poll ``check`` every 0.1 s until it returns true; an exception of ``ignoring`` counts as false. Fails
    naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except ignoring:
            pass
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(0.1)


DAY_END_MARGIN = timedelta(minutes=10)
"""How much of the UTC day the tests that must not see the date change need left; they wait out less."""
DAY_END_TIMEOUT_S = 900 + int(DAY_END_MARGIN.total_seconds())
"""The per-test timeout of such a test: the suite's 900 s plus the longest wait."""


def clear_of_midnight_utc(needed: timedelta = DAY_END_MARGIN) -> None:
    """Return once the current UTC day has at least ``needed`` left, waiting into the next day if it has not: for
    a test whose dates must not change under it (mark it ``pytest.mark.timeout(DAY_END_TIMEOUT_S)``)."""
    now = datetime.now(UTC)
    left = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC) - now
    if left < needed:
        print(f"waiting {left.total_seconds():.0f} s for midnight UTC: the test needs {needed} of one day")
        time.sleep(left.total_seconds() + 1)
