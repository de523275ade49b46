"""Stack processes are known by an identity a clock step does not change, and stopped with all they started."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devstack import paths, processes
from tests.waiting import wait_until

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]

# A service's process tree: children in their own process group or session that ignore SIGTERM (as Airflow's
# task runners and LocalExecutor workers), their children, and an orphan left in the session by an exited parent.
TREE = """
import os, signal, subprocess, sys, time

role, ready = sys.argv[1], sys.argv[2]


def spawn(child, **kwargs):
    return subprocess.Popen([sys.executable, __file__, child, ready], **kwargs)


if role == "leader":
    spawn("grouped", process_group=0)
    spawn("sessioned", start_new_session=True)
    spawn("orphaner").wait()
elif role in ("grouped", "sessioned"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    spawn(role + "-child")
elif role == "orphaner":
    spawn("orphan", process_group=0)
    sys.exit()
with open(os.path.join(ready, role + ".tmp"), "w") as f:
    f.write(str(os.getpid()))
os.replace(os.path.join(ready, role + ".tmp"), os.path.join(ready, role))
time.sleep(60)
"""
ROLES = {"leader", "grouped", "grouped-child", "sessioned", "sessioned-child", "orphan"}


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[psutil.Process]]:
    """Pid and log folders of the test's own. Afterwards the "scratch" service is stopped, and the processes the
    test adds to the list and every process of their sessions are killed (whatever the code under test did)."""
    monkeypatch.setattr(paths, "PIDS", tmp_path / "pids")
    monkeypatch.setattr(paths, "LOGS", tmp_path / "logs")
    started: list[psutil.Process] = []
    try:
        yield started
    finally:
        with contextlib.suppress(Exception):  # cleaning up: what stop leaves is killed below
            processes.stop("scratch", timeout=1)
        leaders = {proc.pid for proc in started}
        for proc in list(started):
            with contextlib.suppress(psutil.NoSuchProcess):
                started.extend(proc.children(recursive=True))
        for proc in psutil.process_iter():
            with contextlib.suppress(OSError):  # gone meanwhile
                if proc.pid != os.getpid() and os.getsid(proc.pid) in leaders:
                    started.append(proc)
        for proc in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                if proc.pid != os.getpid():
                    proc.kill()


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _step_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """What a stepped wall clock does to psutil: its boot time, and so every ``create_time()``, moves."""
    boot = psutil.boot_time()
    monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: boot + seconds)


def test_stop_ends_the_whole_session_also_what_left_its_group_or_session_or_was_orphaned(tmp_path, scratch):
    tree, ready = tmp_path / "tree.py", tmp_path / "ready"
    tree.write_text(TREE)
    ready.mkdir()
    scratch.append(processes.start("scratch", [sys.executable, str(tree), "leader", str(ready)], dict(os.environ)))
    deadline = time.monotonic() + 30  # a guard against a hang, ample on a loaded machine
    while not ROLES.issubset(f.name for f in ready.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    tree_procs = {f.name: psutil.Process(int(f.read_text())) for f in ready.iterdir() if f.name in ROLES}
    scratch.extend(tree_procs.values())
    assert set(tree_procs) == ROLES

    assert processes.stop("scratch", timeout=2)
    assert [role for role, proc in tree_procs.items() if _alive(proc)] == []


def test_a_clock_step_does_not_make_the_stack_forget_a_live_process(scratch, monkeypatch):
    proc = processes.start("scratch", SLEEP, dict(os.environ))
    scratch.append(proc)
    started = proc.create_time()
    _step_clock(monkeypatch, 100.0)
    assert psutil.Process(proc.pid).create_time() - started == pytest.approx(100.0)  # what the old check compared

    assert processes.recorded_process("scratch") == proc
    assert processes.stop("scratch", timeout=2)
    assert not _alive(proc)


def test_a_pidfile_of_the_old_format_is_read_as_before_and_then_survives_a_clock_step(scratch, monkeypatch):
    proc = psutil.Process(subprocess.Popen(SLEEP, start_new_session=True).pid)
    scratch.append(proc)
    paths.PIDS.mkdir()
    (paths.PIDS / "scratch.pid").write_text(f"{proc.pid} {proc.create_time()}")  # `<pid> <create_time>`

    assert processes.recorded_process("scratch") == proc
    _step_clock(monkeypatch, -100.0)
    assert processes.recorded_process("scratch") == proc


def test_a_pid_reused_by_another_process_is_not_stopped(scratch):
    other = psutil.Process(subprocess.Popen(SLEEP, start_new_session=True).pid)  # not started by devstack
    scratch.append(other)
    time.sleep(0.1)  # the recorded process starts a few clock ticks later (well within a second)
    scratch.append(processes.start("scratch", SLEEP, dict(os.environ)))
    pidfile = paths.PIDS / "scratch.pid"
    _, identity = pidfile.read_text().split(" ", 1)
    pidfile.write_text(f"{other.pid} {identity}")  # the recorded process exited, its PID went to `other`

    assert processes.recorded_process("scratch") is None
    assert not processes.stop("scratch", timeout=2)
    assert _alive(other)
    assert not pidfile.exists()


def test_a_process_that_exits_between_the_wait_and_the_kill_does_not_abort_stop(scratch, monkeypatch):
    proc = processes.start("scratch", SLEEP, dict(os.environ))
    scratch.append(proc)
    wait_procs = psutil.wait_procs

    def exits_just_after_the_timeout(procs, timeout=None, callback=None):
        monkeypatch.setattr(psutil, "wait_procs", wait_procs)
        procs = list(procs)
        for p in procs:
            p.kill()
        wait_procs(procs, timeout=5)
        return [], procs  # as if they were still there when the wait timed out

    monkeypatch.setattr(psutil, "wait_procs", exits_just_after_the_timeout)
    assert processes.stop("scratch", timeout=2)
    assert not (paths.PIDS / "scratch.pid").exists()


def test_a_process_that_exits_while_its_children_are_listed_does_not_abort_stop(scratch, monkeypatch):
    proc = processes.start("scratch", SLEEP, dict(os.environ))
    scratch.append(proc)

    def gone(self, recursive=False):
        raise psutil.NoSuchProcess(self.pid)

    monkeypatch.setattr(psutil.Process, "children", gone)
    assert processes.stop("scratch", timeout=2)
    assert not _alive(proc)


# A member that answers SIGTERM by starting a process in the session (a worker handing its task on), then exits.
SPAWNS_ON_TERM = """
import os, signal, subprocess, sys, time

ready = sys.argv[1]


def hand_on(_signum, _frame):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(os.path.join(ready, "child.tmp"), "w") as f:
        f.write(str(child.pid))
    os.replace(os.path.join(ready, "child.tmp"), os.path.join(ready, "child"))
    os._exit(0)


signal.signal(signal.SIGTERM, hand_on)
open(os.path.join(ready, "member"), "w").close()
time.sleep(60)
"""


def _wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout  # a guard against a hang, not a measure of speed
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), path


def test_what_a_member_starts_in_the_session_after_the_sigterm_is_killed_too(tmp_path, scratch):
    script, ready = tmp_path / "spawns_on_term.py", tmp_path / "ready"
    script.write_text(SPAWNS_ON_TERM)
    ready.mkdir()
    leader = processes.start("scratch", [sys.executable, str(script), str(ready)], dict(os.environ))
    scratch.append(leader)
    _wait_for(ready / "member")

    assert processes.stop("scratch", timeout=10)

    child = int((ready / "child").read_text())  # started after the SIGTERM, written before the member exited
    try:
        scratch.append(psutil.Process(child))
    except psutil.NoSuchProcess:
        return  # killed and reaped
    assert not _alive(scratch[-1])


def test_a_leader_that_has_exited_is_no_member_of_its_session_though_its_session_lives_on(tmp_path, scratch):
    member_pid = tmp_path / "member"
    leaves_a_member = (
        "import pathlib, subprocess, sys; "
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"pathlib.Path({str(member_pid)!r}).write_text(str(p.pid))"
    )
    popen = subprocess.Popen([sys.executable, "-c", leaves_a_member], start_new_session=True)
    leader = psutil.Process(popen.pid)  # the object a caller holds, made while the leader ran
    scratch.append(leader)
    assert popen.wait(timeout=30) == 0  # exited and reaped: its PID is free to be given to another process
    member = psutil.Process(int(member_pid.read_text()))
    scratch.append(member)

    assert [proc.pid for proc in processes.session(leader)] == [member.pid]


def test_a_service_that_never_gets_healthy_is_reported_with_the_checks_last_error() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    reported = r"minio not healthy after 1s \(last check: ConnectionRefusedError: "
    with pytest.raises(processes.StackError, match=reported):
        processes.wait_until("minio", refused, timeout=1)


LEAVES_A_CHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # in the leader's session
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(60)
"""


def test_what_a_killed_process_left_running_is_found_and_stopped(tmp_path, scratch):
    script, child_pid = tmp_path / "leader.py", tmp_path / "child.pid"
    script.write_text(LEAVES_A_CHILD)
    leader = processes.start("scratch", [sys.executable, str(script), str(child_pid)], dict(os.environ))
    scratch.append(leader)
    wait_until(lambda: child_pid.exists() and child_pid.read_text() != "", "the leader's child", timeout_s=30)
    child = psutil.Process(int(child_pid.read_text()))
    scratch.append(child)
    leader.kill()  # as a supervisor killed with kill -9: its command goes on
    wait_until(lambda: leader.status() == psutil.STATUS_ZOMBIE, "the killed leader to exit")  # not reaped yet

    assert processes.recorded_process("scratch") is None
    assert processes.leftovers("scratch") == [child]
    assert (paths.PIDS / "scratch.pid").exists()  # kept: the pidfile is how the leftovers are found
    assert processes.stop("scratch", timeout=2)
    assert not _alive(child) and not (paths.PIDS / "scratch.pid").exists()
    assert processes.leftovers("scratch") == [] and not processes.stop("scratch")


def test_a_session_that_outlived_its_leader_without_the_services_mark_is_not_stopped(tmp_path, scratch):
    # another program's session whose leader exited (a daemon's double fork), with a pidfile naming that leader
    script, child_pid = tmp_path / "leader.py", tmp_path / "child.pid"
    script.write_text(LEAVES_A_CHILD)
    leader = psutil.Process(subprocess.Popen([sys.executable, str(script), str(child_pid)], start_new_session=True).pid)
    scratch.append(leader)
    wait_until(lambda: child_pid.exists() and child_pid.read_text() != "", "the leader's child", timeout_s=30)
    other = psutil.Process(int(child_pid.read_text()))
    scratch.append(other)
    paths.PIDS.mkdir()
    (paths.PIDS / "scratch.pid").write_text(f"{leader.pid} {processes._identity(leader.pid)}")
    leader.kill()
    wait_until(lambda: leader.status() == psutil.STATUS_ZOMBIE, "the leader to exit")

    assert processes.leftovers("scratch") == []
    assert not processes.stop("scratch", timeout=1)
    assert _alive(other)
