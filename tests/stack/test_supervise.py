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

import psutil
import pytest
import yaml

from devstack import paths, supervise
from devstack.services import SERVICES
from tests.api_process import free_port

# Exits at once, with an error on its first two runs and cleanly on the later ones.
EXITS_AT_ONCE = """
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


# Its first run answers 200 on its health URL for a second, then 503, and hangs ignoring SIGTERM (as the scheduler
# that waits for an executor worker); its later runs exit at once.
HANGS_UNHEALTHY = """
import http.server, os, pathlib, signal, sys, threading, time
runs, port = pathlib.Path(sys.argv[1]), int(sys.argv[2])
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
if len(runs.read_text()) > 1:
    sys.exit(0)
(runs.parent / "first-pid").write_text(str(os.getpid()))
signal.signal(signal.SIGTERM, signal.SIG_IGN)
born = time.monotonic()

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if time.monotonic() - born < 1 else 503)
        self.end_headers()

    def log_message(self, *args):
        pass

threading.Thread(target=http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever, daemon=True).start()
time.sleep(600)
"""


@pytest.mark.timeout(60)  # without the watchdog, supervise() never returns
def test_a_command_that_stops_answering_200_on_its_health_url_is_stopped_and_started_again(tmp_path, monkeypatch):
    for name, value in {"BACKOFF_S": 0.01, "UNHEALTHY_AFTER_S": 1.0, "HEALTH_POLL_S": 0.2, "STOP_GRACE_S": 1.0}.items():
        monkeypatch.setattr(supervise, name, value)
    runs, port = tmp_path / "runs", free_port()

    returned = supervise.supervise([sys.executable, "-c", HANGS_UNHEALTHY, str(runs), str(port)],
                                   f"http://127.0.0.1:{port}/")  # fmt: skip

    assert returned == 0  # the later runs exit at once: given up after them
    assert runs.read_text() == "x" * (1 + supervise.MAX_RESTARTS)
    assert not psutil.pid_exists(int((tmp_path / "first-pid").read_text()))  # SIGKILLed: it ignored SIGTERM


def test_a_command_that_exits_with_an_error_or_cleanly_is_started_again_until_given_up(tmp_path, monkeypatch):
    monkeypatch.setattr(supervise, "BACKOFF_S", 0.01)
    runs = tmp_path / "runs"

    assert supervise.supervise([sys.executable, "-c", EXITS_AT_ONCE, str(runs)]) == 0  # the last run's exit code
    assert runs.read_text() == "x" * (1 + supervise.MAX_RESTARTS)  # clean exits (from the third run on) included


def test_a_command_restarted_too_often_within_the_window_is_given_up() -> None:
    recent = deque([0.0] * (supervise.MAX_RESTARTS - 1))
    assert supervise.should_restart(recent, now=1.0)
    recent.append(1.0)
    assert not supervise.should_restart(recent, now=2.0)
    assert supervise.should_restart(recent, now=supervise.WINDOW_S + 1.5)  # the old restarts have aged out
    assert len(recent) == 0


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
        assert proc.wait(timeout=30) == 0  # a guard against a hang: a backoff, then up to two 5 s waits for leftovers
        assert (tmp_path / "second").read_text() == "gone"
    finally:
        if proc.poll() is None:
            proc.kill()
        left = tmp_path / "left"
        with contextlib.suppress(OSError, ValueError):
            if os.getsid(pid := int(left.read_text())) == proc.pid:  # still in the session the test started
                os.kill(pid, signal.SIGKILL)


# Crashes on its first run; later runs record their PID and stay up (as a scheduler that came back).
CRASHES_THEN_STAYS = """
import os, pathlib, sys, time
state = pathlib.Path(sys.argv[1])
if not (state / "crashed").exists():
    (state / "crashed").touch()
    sys.exit(3)
(state / "started-again.tmp").write_text(str(os.getpid()))
(state / "started-again.tmp").replace(state / "started-again")
time.sleep(60)
"""

WITH_BACKOFF = """
import sys
from devstack import supervise

supervise.BACKOFF_S = float(sys.argv[1])
sys.exit(supervise.supervise(sys.argv[2:]))
"""

# Runs the supervisor as `python -m devstack.supervise` does, with the stop arriving at one exact moment: while it
# starts the command again, after devstack signalled the session (so the new command did not get that SIGTERM).
STOPPED_WHILE_RESTARTING = """
import os, signal, subprocess, sys
from devstack import supervise

supervise.BACKOFF_S = 0.1
real_popen, starts = subprocess.Popen, []


def popen(*args, **kwargs):
    child = real_popen(*args, **kwargs)
    starts.append(child.pid)
    if len(starts) == 2:
        os.kill(os.getpid(), signal.SIGTERM)  # handled here, before the supervisor sees the new command
    return child


subprocess.Popen = popen
sys.exit(supervise.supervise(sys.argv[1:]))
"""


def _session_of(leader: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError):
            if proc.pid != os.getpid() and os.getsid(proc.pid) == leader:
                found.append(proc)
    return found


def _end_session(leader: int) -> None:
    for proc in _session_of(leader):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def _wait_for(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout  # a guard against a hang, not a measure of speed
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


def test_a_stop_during_the_restart_backoff_ends_the_supervisor_without_starting_the_command_again(tmp_path: Path):
    out = tmp_path / "supervise.out"
    with out.open("w") as stdout:
        # `python -m devstack.supervise` with a backoff long enough for the test to be sure to stop it within it
        # (the sleep goes on after the signal: the supervisor ends when it is over)
        proc = subprocess.Popen([sys.executable, "-c", WITH_BACKOFF, "4", sys.executable, "-c", CRASHES_THEN_STAYS,
                                 str(tmp_path)], start_new_session=True, stdout=stdout, cwd=paths.REPO)  # fmt: skip
    try:
        # printed when the command has exited, just before the supervisor sleeps BACKOFF_S
        assert _wait_for(lambda: "exited with 3: starting it again" in out.read_text()), out.read_text()
        os.killpg(proc.pid, signal.SIGTERM)

        assert proc.wait(timeout=30) == 3  # the command's last exit code: it was not started again
        assert not (tmp_path / "started-again").exists()
        assert _session_of(proc.pid) == []
    finally:
        _end_session(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_stop_that_comes_while_the_command_is_started_again_terminates_that_command(tmp_path: Path):
    proc = subprocess.Popen([sys.executable, "-c", STOPPED_WHILE_RESTARTING, sys.executable, "-c", CRASHES_THEN_STAYS,
                             str(tmp_path)], start_new_session=True, cwd=paths.REPO)  # fmt: skip
    try:
        # the restarted command stays up for 60 s unless terminated: a supervisor that waits for it does not end
        assert proc.wait(timeout=30) == -signal.SIGTERM & 0xFF  # sys.exit(-15): its last command was terminated
        assert (tmp_path / "crashed").exists()
        assert _session_of(proc.pid) == []  # nothing of the command is left running
    finally:
        _end_session(proc.pid)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_every_service_of_the_local_stack_is_started_through_the_supervisor_as_compose_restarts_each():
    compose = yaml.safe_load((paths.REPO / "docker-compose.yaml").read_text())["services"]
    for svc in SERVICES:
        assert compose[svc.name].get("restart") == "unless-stopped", svc.name
        argv = svc.argv()
        assert argv[:3] == [str(paths.VENV_BIN / "python"), "-m", "devstack.supervise"], f"{svc.name}: {argv}"
        assert argv[3:] and "devstack.supervise" not in argv[3:], f"{svc.name}: {argv}"  # a command, supervised once
