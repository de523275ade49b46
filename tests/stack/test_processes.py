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
    """Pid and log folders of the test's own; the processes the test adds to the list are killed afterwards."""
    monkeypatch.setattr(paths, "PIDS", tmp_path / "pids")
    monkeypatch.setattr(paths, "LOGS", tmp_path / "logs")
    started: list[psutil.Process] = []
    yield started
    for proc in started:
        with contextlib.suppress(psutil.NoSuchProcess):
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
    deadline = time.monotonic() + 8
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
