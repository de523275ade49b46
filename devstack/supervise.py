"""Keep a command running: start it again whenever it exits without being stopped, as compose's
``restart: unless-stopped`` does.

The local stack runs each of its services under it (``devstack.services.SERVICES``: Kafka, MinIO, the
Airflow api-server, scheduler, dag-processor and triggerer, and the API), as docker-compose.yaml restarts
them. Each of them is meant to run until stopped, so a clean exit is restarted too: MinIO and Airflow's triggerer
and dag-processor exit 0 on a SIGTERM that reached them alone, not through ``devstack stop``. Airflow 3.3's
scheduler, for one, exits when a run it is scheduling is deleted under it (its error handler reads the deleted
row); the retry of an ``airflow backfill create`` refused by SQLite deletes runs it had committed, which is enough.
A command that keeps exiting is given up after ``MAX_RESTARTS`` restarts within ``WINDOW_S``, so that ``devstack
status`` shows it stopped and its log says why. What an exited command leaves running in the supervisor's session
(executor workers, task runners in their own process group, their Spark JVMs, the log server holding its port) is
ended before the command starts again or the supervisor exits.

Usage: ``python -m devstack.supervise <command> [args...]``, as the leader of its own session (as
``devstack.processes.start`` runs it); stopped by signalling its session or process group (SIGTERM or SIGINT
reach the command directly; this then waits for it and exits).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType

import psutil

from devstack import processes

MAX_RESTARTS = 5
WINDOW_S = 300.0
BACKOFF_S = 2.0
LEFTOVER_GRACE_S = 5.0


def should_restart(restarts: deque[float], now: float) -> bool:
    """Whether to start the exited command again: not after ``MAX_RESTARTS`` of ``restarts`` within ``WINDOW_S``."""
    while restarts and now - restarts[0] > WINDOW_S:
        restarts.popleft()
    return len(restarts) < MAX_RESTARTS


def supervise(argv: Sequence[str]) -> int:
    """Run ``argv`` until stopped, or given up after ``MAX_RESTARTS`` restarts in ``WINDOW_S``; its last exit code."""
    stopping = False
    child = subprocess.Popen(argv)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True  # the signal reached the command too: devstack signals and then ends the whole session

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts: deque[float] = deque()
    while True:
        returncode = child.wait()
        restart = not stopping and should_restart(restarts, time.monotonic())
        if restart:
            restarts.append(time.monotonic())
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            print(f"{stamp} [devstack.supervise] {argv[0]} exited with {returncode}: starting it again", flush=True)
            time.sleep(BACKOFF_S)
        if not stopping and os.getsid(0) == os.getpid():  # our own session: all else in it is the command's
            processes.end_session(psutil.Process(), LEFTOVER_GRACE_S)
        if stopping or not restart:
            return returncode
        child = subprocess.Popen(argv)
        if stopping:  # the stop came while starting it, after the session was signalled
            child.terminate()


if __name__ == "__main__":
    sys.exit(supervise(sys.argv[1:]))
