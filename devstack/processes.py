"""Start and stop stack processes by the PIDs they were recorded with (never by name)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

from devstack import paths


class StackError(RuntimeError):
    """A service could not be installed, started or reached."""


def _pidfile(name: str) -> Path:
    return paths.PIDS / f"{name}.pid"


def recorded_process(name: str) -> psutil.Process | None:
    """The live process recorded for ``name``, or None (a stale pidfile is removed)."""
    pidfile = _pidfile(name)
    if not pidfile.exists():
        return None
    pid, _, started = pidfile.read_text().partition(" ")
    try:
        proc = psutil.Process(int(pid))
        if started and abs(proc.create_time() - float(started)) > 1.0:
            raise psutil.NoSuchProcess(int(pid))  # the PID was reused by something else
        if proc.status() == psutil.STATUS_ZOMBIE:
            raise psutil.NoSuchProcess(int(pid))
        return proc
    except (psutil.NoSuchProcess, ValueError):
        pidfile.unlink(missing_ok=True)
        return None


def port_in_use(port: int) -> bool:
    """True when something listens on the loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def ensure_ports_free(service: str, ports: Sequence[int]) -> None:
    """Fail with the port's number when another program already holds it."""
    for port in ports:
        if port_in_use(port):
            raise StackError(f"port {port} needed by {service} is already in use by another process; stop that process")


def start(name: str, argv: Sequence[str], env: dict[str, str]) -> psutil.Process:
    """Start ``argv`` in its own session, output appended to `.stack/logs/<name>.log`, and record its PID."""
    paths.LOGS.mkdir(parents=True, exist_ok=True)
    paths.PIDS.mkdir(parents=True, exist_ok=True)
    with open(paths.LOGS / f"{name}.log", "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            cwd=paths.REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    proc = psutil.Process(popen.pid)
    _pidfile(name).write_text(f"{popen.pid} {proc.create_time()}")
    return proc


def stop(name: str, timeout: float = 30.0) -> bool:
    """Stop the recorded process and its session (SIGTERM, then SIGKILL). True if something was stopped."""
    proc = recorded_process(name)
    if proc is None:
        return False
    group = [proc, *proc.children(recursive=True)]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(group, timeout=timeout)
    for p in alive:
        p.kill()
    psutil.wait_procs(alive, timeout=5)
    _pidfile(name).unlink(missing_ok=True)
    return True


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    proc: psutil.Process | None = None,
) -> None:
    """Poll ``check`` until it holds; fail early if ``proc`` died, naming its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # a service still starting answers with all kinds of errors
            pass
        if proc is not None and (not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE):
            raise StackError(f"{what} exited while starting; see {paths.LOGS / what}.log")
        time.sleep(0.5)
    raise StackError(f"{what} not healthy after {timeout:.0f}s; see {paths.LOGS / what}.log")
