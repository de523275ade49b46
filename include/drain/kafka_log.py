"""librdkafka's log, through Python logging and without repeats.

While a broker is down, librdkafka reports every reconnect attempt, about twenty lines a second for each client,
which buries the rest of a task's log. The drain's clients log to LIBRDKAFKA_LOG instead of stderr, whose filter
lets one line of a kind through per window and says, on the next one, how many it held back.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

WINDOW_S = 30.0

# parts that differ between otherwise repeated lines: librdkafka's own suppression counts, and elapsed times
_SUPPRESSED = re.compile(r", \d+ identical error\(s\) suppressed")
_ELAPSED = re.compile(r"\d+ms")


class RepeatFilter(logging.Filter):
    """Passes a message at most once per ``window_s`` seconds; the next one passed names how many were held."""

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._window_s = window_s
        self._clock = clock
        self._kinds: dict[str, tuple[float, int]] = {}  # kind -> (when last passed, held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        kind = _ELAPSED.sub("#ms", _SUPPRESSED.sub("", message))
        now = self._clock()
        passed_at, held = self._kinds.get(kind, (None, 0))
        if passed_at is not None and now - passed_at < self._window_s:
            self._kinds[kind] = (passed_at, held + 1)
            return False
        self._kinds[kind] = (now, 0)
        if held:
            record.msg, record.args = f"{message} ({held} more like it in the last {self._window_s:g} s)", ()
        return True


LIBRDKAFKA_LOG = logging.getLogger("include.drain.librdkafka")
LIBRDKAFKA_LOG.addFilter(RepeatFilter())
