"""The supervisor that keeps the local stack's Airflow components running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from devstack import supervise

CRASHES_TWICE = """
import pathlib, sys
runs = pathlib.Path(sys.argv[1])
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
sys.exit(3 if len(runs.read_text()) < 3 else 0)
"""

# The first run leaves a process behind in its own process group (as an Airflow task runner) and is killed (as the
# scheduler was, with -9); the second notes whether that process still runs and exits cleanly.
LEAVES_ONE_BEHIND = """
import os, pathlib, signal, subprocess, sys
state = pathlib.Path(sys.argv[1])
left = state / "left"
if not left.exists():
    left.write_text(str(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], process_group=0).pid))
    os.kill(os.getpid(), signal.SIGKILL)
stat = pathlib.Path("/proc", left.read_text(), "stat")
state_letter = stat.read_text().rpartition(")")[2].split()[0] if stat.exists() else "gone"
(state / "second").write_text("gone" if state_letter in ("gone", "Z", "X") else "alive")  # a zombie is gone
"""


def test_a_crashed_command_is_started_again_until_it_exits_cleanly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(supervise, "BACKOFF_S", 0.01)
    runs = tmp_path / "runs"

    assert supervise.supervise([sys.executable, "-c", CRASHES_TWICE, str(runs)]) == 0
    assert runs.read_text() == "xxx"


def test_a_crash_loop_is_given_up_and_a_clean_exit_is_not_restarted() -> None:
    recent = deque([0.0] * (supervise.MAX_RESTARTS - 1))
    assert supervise.should_restart(1, recent, now=1.0)
    recent.append(1.0)
    assert not supervise.should_restart(1, recent, now=2.0)
    assert supervise.should_restart(1, recent, now=supervise.WINDOW_S + 1.5)  # the old restarts have aged out
    assert not supervise.should_restart(0, deque(), now=0.0)


def test_sigterm_to_the_process_group_stops_command_and_supervisor(tmp_path: Path) -> None:
    started = tmp_path / "started"
    script = f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-m", "devstack.supervise", sys.executable, "-c", script],
                            start_new_session=True)  # fmt: skip
    try:
        for _ in range(200):
            if started.exists():
                break
            time.sleep(0.05)
        assert started.exists()
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) != 0  # the command died of the signal and was not started again
    finally:
        if proc.poll() is None:
            proc.kill()


def test_what_a_crashed_command_left_in_the_session_is_ended_before_it_starts_again(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "devstack.supervise", sys.executable, "-c", LEAVES_ONE_BEHIND,
                             str(tmp_path)], start_new_session=True)  # fmt: skip
    try:
        assert proc.wait(timeout=9) == 0
        assert (tmp_path / "second").read_text() == "gone"
    finally:
        if proc.poll() is None:
            proc.kill()
        left = tmp_path / "left"
        with contextlib.suppress(OSError, ValueError):
            if os.getsid(pid := int(left.read_text())) == proc.pid:  # still in the session the test started
                os.kill(pid, signal.SIGKILL)
