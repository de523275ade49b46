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

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
SERVICE_MARK = "DEVSTACK_SERVICE"
"""Set to the service's name in the environment of every process it starts (inherited by what they start)."""


class StackError(RuntimeError):
    """A service could not be installed, started or reached."""


def _pidfile(name: str) -> Path:
    return paths.PIDS / f"{name}.pid"


def _identity(pid: int) -> str:
    """The boot and the start of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22).

    Unlike psutil's ``create_time()``, which adds a boot time derived from the wall clock, this does not move
    when the clock is stepped (NTP, a resumed VM); a later process with the same PID has another one.
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    return f"{_BOOT_ID.read_text().strip()} {stat.rpartition(')')[2].split()[19]}"


def _record(name: str, pid: int) -> None:
    """Write ``<pid> <boot id> <start ticks>`` to the pidfile (atomically: other commands may read it)."""
    tmp = _pidfile(name).with_suffix(".tmp")
    tmp.write_text(f"{pid} {_identity(pid)}")
    tmp.replace(_pidfile(name))


def recorded_process(name: str) -> psutil.Process | None:
    """The live process recorded for ``name``, or None (a pidfile of a process that is gone is removed, unless
    it left processes running: see ``leftovers``)."""
    pidfile = _pidfile(name)
    try:
        pid, *recorded = pidfile.read_text().split()
        proc = psutil.Process(int(pid))
        if len(recorded) == 2:
            ours = " ".join(recorded) == _identity(proc.pid)
        else:  # written before the boot id and start ticks: `<pid> <create_time>`, compared as it was, then rewritten
            (started,) = recorded
            ours = abs(proc.create_time() - float(started)) <= 1.0
            if ours:
                _record(name, proc.pid)
        if not ours or proc.status() == psutil.STATUS_ZOMBIE:
            raise psutil.NoSuchProcess(proc.pid)  # exited, or the PID now belongs to another process
        return proc
    except (psutil.NoSuchProcess, FileNotFoundError, ValueError):
        if not leftovers(name):
            pidfile.unlink(missing_ok=True)
        return None


def leftovers(name: str) -> list[psutil.Process]:
    """What the recorded process of ``name`` left running after it exited (killed, say): the members of its session
    and their descendants, e.g. the Airflow scheduler under a killed supervisor.

    Only when the pidfile is of this boot, no live process has the recorded PID (one that has exited and is not
    reaped yet still holds it, so it cannot be reused), and only processes started since the recorded one that
    carry the service's mark (``SERVICE_MARK``) in their environment: never an unrelated process.
    """
    try:
        pid, boot_id, ticks = _pidfile(name).read_text().split()
        if boot_id != _BOOT_ID.read_text().strip():
            return []
        if psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE:
            return []  # the recorded process itself, or another one with its PID
    except psutil.NoSuchProcess:
        pass
    except (FileNotFoundError, ValueError):  # no pidfile, or one of the old format (no boot id): nothing to trust
        return []
    return [proc for proc in _members(int(pid), None) if _left_by(proc, name, int(ticks))]


def _left_by(proc: psutil.Process, name: str, since_ticks: int) -> bool:
    """Whether ``proc`` is a live process the service ``name`` started at or after ``since_ticks``."""
    try:
        started = int(_identity(proc.pid).split()[1])
        return (
            started >= since_ticks
            and proc.status() != psutil.STATUS_ZOMBIE
            and proc.environ().get(SERVICE_MARK) == name
        )
    except (psutil.Error, OSError, IndexError, ValueError):  # gone meanwhile, or not ours to read
        return False


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
            env={**env, SERVICE_MARK: name},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _record(name, popen.pid)
    return psutil.Process(popen.pid)


def session(leader: psutil.Process) -> list[psutil.Process]:
    """``leader`` (while it is still that process), the processes of its session and all their descendants, also
    those that moved to another process group or session (Airflow's task runners take their own group); never the
    calling process. Linux gives no new process a PID still in use as a session id, so every match is a member."""
    return _members(leader.pid, leader if leader.is_running() else None)


def _members(sid: int, leader: psutil.Process | None) -> list[psutil.Process]:
    """``leader`` (when given), the other processes of session ``sid`` and all their descendants; never the caller."""
    members: dict[int, psutil.Process] = {} if leader is None else {leader.pid: leader}
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError):  # gone meanwhile
            if proc.pid != sid and os.getsid(proc.pid) == sid:
                members[proc.pid] = proc
    for proc in list(members.values()):
        with contextlib.suppress(psutil.NoSuchProcess):
            members.update((child.pid, child) for child in proc.children(recursive=True))
    members.pop(os.getpid(), None)
    return list(members.values())


def end_session(leader: psutil.Process, timeout: float) -> None:
    """SIGTERM ``session(leader)``, wait up to ``timeout`` s, then SIGKILL what is left and what it started since.

    The second look skips the leader once it has exited: its PID may then belong to an unrelated process.
    """
    _end(lambda: session(leader), timeout)


def _end(members_now: Callable[[], list[psutil.Process]], timeout: float) -> None:
    """SIGTERM ``members_now()``, wait up to ``timeout`` s, then SIGKILL what is left and what ``members_now()``
    finds then."""
    members = members_now()
    _signal(members, signal.SIGTERM)
    _, alive = psutil.wait_procs(members, timeout=timeout)
    left = list({*alive, *members_now()})
    _signal(left, signal.SIGKILL)
    psutil.wait_procs(left, timeout=5)


def _signal(procs: Sequence[psutil.Process], sig: signal.Signals) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # exited meanwhile, or not ours
            proc.send_signal(sig)


def stop(name: str, timeout: float = 30.0) -> bool:
    """Stop the recorded process and its session (see ``end_session``), or what it left running when it exited
    (``leftovers``). True if something was stopped."""
    proc = recorded_process(name)
    if proc is not None:
        end_session(proc, timeout)
    elif leftovers(name):
        _end(lambda: leftovers(name), timeout)
    else:
        return False
    _pidfile(name).unlink(missing_ok=True)
    return True


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    proc: psutil.Process | None = None,
) -> None:
    """Poll ``check`` until it holds; fail early if ``proc`` died, naming its log (and the check's last error)."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
            last_error = ""
        except Exception as error:  # a service still starting answers with all kinds of errors: kept for the report
            last_error = f" (last check: {type(error).__name__}: {error})"
        if proc is not None and (not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE):
            raise StackError(f"{what} exited while starting; see {paths.LOGS / what}.log")
        time.sleep(0.5)
    raise StackError(f"{what} not healthy after {timeout:.0f}s{last_error}; see {paths.LOGS / what}.log")
