"""Progress lines of the stack manager (stderr, so `env` output stays clean)."""

from __future__ import annotations

import sys
import time

_T0 = time.monotonic()


def step(message: str) -> None:
    """Print one progress line with the seconds since the command started."""
    print(f"[devstack {time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)
