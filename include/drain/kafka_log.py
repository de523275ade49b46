"""librdkafka's log, through Python logging and without repeats.

While a broker is down, librdkafka reports every reconnect attempt, about twenty lines a second for each client,
which buries the rest of a task's log. The drain's clients log to LIBRDKAFKA_LOG instead of stderr, whose filter
lets one line of a kind through per window and says, on the next one, how many it held back. What is still held
when a drain has closed its clients is logged then (``log_held_back``), so no count is lost.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 30.0

# parts that differ between otherwise repeated lines: librdkafka's own suppression counts, and elapsed times
_SUPPRESSED = re.compile(r", \d+ identical error\(s\) suppressed")
_ELAPSED = re.compile(r"\d+ms")


@dataclass
class _Kind:
    """One kind of line: when it last passed, and what was held back since."""

    passed_at: float
    held: int = 0
    last_held: logging.LogRecord | None = None


class RepeatFilter(logging.Filter):
    """Passes a message at most once per ``window_s`` seconds; the next one passed names how many were held."""

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._window_s = window_s
        self._clock = clock
        self._kinds: dict[str, _Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        kind = _ELAPSED.sub("#ms", _SUPPRESSED.sub("", message))
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen.passed_at < self._window_s:
            seen.held, seen.last_held = seen.held + 1, record
            return False
        self._kinds[kind] = _Kind(now)
        if seen is not None and seen.held:
            record.msg, record.args = f"{message} ({seen.held} more like it in the last {self._window_s:g} s)", ()
        return True

    def take_held(self) -> list[tuple[logging.LogRecord, int]]:
        """The last line held back of each kind with how many were, forgetting every kind (they pass again)."""
        held = [(kind.last_held, kind.held) for kind in self._kinds.values() if kind.last_held is not None]
        self._kinds.clear()
        return held


LIBRDKAFKA_LOG = logging.getLogger("include.drain.librdkafka")
_REPEATS = RepeatFilter()
LIBRDKAFKA_LOG.addFilter(_REPEATS)


def log_held_back(logger: logging.Logger = LIBRDKAFKA_LOG, repeats: RepeatFilter = _REPEATS) -> None:
    """Log each kind of line ``repeats`` still holds back, with its count: call it once the clients are closed."""
    for record, held in repeats.take_held():
        logger.log(record.levelno, "%s (the last of %d like it held back)", record.getMessage(), held)
