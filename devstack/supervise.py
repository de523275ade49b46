"""Keep a command running: start it again whenever it exits without being stopped, as compose's
``restart: unless-stopped`` does.

The local stack runs each of its services under it (``devstack.services.SERVICES``: Kafka, MinIO, the
Airflow api-server, scheduler, dag-processor and triggerer, and the API), as docker-compose.yaml restarts
them. Each of them is meant to run until stopped, so a clean exit is restarted too: MinIO and Airflow's triggerer
and dag-processor exit 0 on a SIGTERM that reached them alone, not through ``devstack stop``. Airflow 3.3's
scheduler, for one, exits when a run it is scheduling is deleted under it (its error handler reads the deleted
row); the retry of an ``airflow backfill create`` refused by SQLite deletes runs it had committed, which is enough.
That exit can hang instead: its LocalExecutor then waits for a worker that never gets its stop message, with the
scheduler's health server answering 503. So a command given ``--health URL`` is also stopped (SIGTERM, then SIGKILL)
and started again once the URL, which answered 200 before, has not answered 200 for ``UNHEALTHY_AFTER_S``.
A command that keeps exiting is given up after ``MAX_RESTARTS`` restarts within ``WINDOW_S``, so that ``devstack
status`` shows it stopped and its log says why. What an exited command leaves running in the supervisor's session
(executor workers, task runners in their own process group, their Spark JVMs, the log server holding its port) is
ended before the command starts again or the supervisor exits.

Usage: ``python -m devstack.supervise [--health URL] <command> [args...]``, as the leader of its own session (as
``devstack.processes.start`` runs it); stopped by signalling its session or process group (SIGTERM or SIGINT
reach the command directly; this then waits for it and exits).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
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
UNHEALTHY_AFTER_S = 180.0
HEALTH_POLL_S = 5.0
STOP_GRACE_S = 15.0


def should_restart(restarts: deque[float], now: float) -> bool:
    """Whether to start the exited command again: not after ``MAX_RESTARTS`` of ``restarts`` within ``WINDOW_S``."""
    while restarts and now - restarts[0] > WINDOW_S:
        restarts.popleft()
    return len(restarts) < MAX_RESTARTS


def answers_ok(url: str) -> bool:
    """Whether ``url`` answers 200 within a few seconds."""
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_POLL_S) as reply:
            return reply.status == 200
    except OSError:  # refused, timed out, or an HTTP error status
        return False


class Watchdog:
    """Stops the command whose health URL, after answering 200, has not answered 200 for ``UNHEALTHY_AFTER_S``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.child: subprocess.Popen[bytes] | None = None
        self.done = threading.Event()

    def watch(self, child: subprocess.Popen[bytes]) -> None:
        """Watch ``child`` from now on (a restarted command must answer 200 again first)."""
        self.child = child

    def run(self) -> None:
        watched, healthy_at = None, None
        while not self.done.wait(HEALTH_POLL_S):
            child = self.child
            if child is not watched:
                watched, healthy_at = child, None
            if child is None or child.poll() is not None:
                continue
            if answers_ok(self.url):
                healthy_at = time.monotonic()
            elif healthy_at is not None and time.monotonic() - healthy_at > UNHEALTHY_AFTER_S:
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                print(f"{stamp} [devstack.supervise] {self.url} has not answered 200 for {UNHEALTHY_AFTER_S:.0f}s: "
                      "stopping the command to start it again", flush=True)  # fmt: skip
                child.terminate()
                try:
                    child.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    child.kill()
                healthy_at = None


def supervise(argv: Sequence[str], health_url: str | None = None) -> int:
    """Run ``argv`` until stopped, or given up after ``MAX_RESTARTS`` restarts in ``WINDOW_S``; its last exit code.
    With ``health_url``, a command that stops answering 200 there is stopped and started again (see ``Watchdog``)."""
    stopping = False
    child = subprocess.Popen(argv)
    watchdog = Watchdog(health_url) if health_url else None
    if watchdog is not None:
        watchdog.watch(child)
        threading.Thread(target=watchdog.run, name="health", daemon=True).start()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True  # the signal reached the command too: devstack signals and then ends the whole session
        if watchdog is not None:
            watchdog.done.set()

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
            if watchdog is not None:
                watchdog.done.set()
            return returncode
        child = subprocess.Popen(argv)
        if watchdog is not None:
            watchdog.watch(child)
        if stopping:  # the stop came while starting it, after the session was signalled
            child.terminate()


def main(args: Sequence[str]) -> int:
    """``[--health URL] <command> [args...]``."""
    if args[:1] == ["--health"]:
        return supervise(args[2:], health_url=args[1])
    return supervise(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
