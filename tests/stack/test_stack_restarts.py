"""The stack's api-server and API, killed, and MinIO, terminated (it then exits 0), are started again by their
supervisors (as compose's ``restart: unless-stopped`` would) and answer healthy on their ports again.

Kills processes of the stack everyone uses, so marked ``disruptive`` (run last, serially); each test waits until its
service is back, leaving the stack as it found it.
"""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Callable

import psutil
import pytest

from devstack import paths, processes
from devstack.ports import PORTS
from tests.waiting import wait_until

# A restart is the supervisor's 2 s backoff and a start: the api-server's takes ~15 s, longer on a busy machine.
BACK_WITHIN_S = 120
ANSWERS = (OSError, ValueError, psutil.Error)  # refused, reset, an error status, half a body, a process gone meanwhile


def _api_server_healthy() -> bool:
    url = f"http://127.0.0.1:{PORTS['airflow']}/api/v2/monitor/health"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status == 200 and json.load(resp)["metadatabase"]["status"] == "healthy"


def _api_ready() -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORTS['api']}/ready", timeout=5) as resp:
        return resp.status == 200


def _minio_live() -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORTS['minio']}/minio/health/live", timeout=5) as resp:
        return resp.status == 200


def _listening(port: int) -> set[int]:
    """The PIDs of the processes that listen on the loopback ``port``."""
    return {c.pid for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


@pytest.mark.disruptive
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "port", "healthy", "sent", "exit_code"),
    [
        # SIGKILL: no clean exit, as an OOM kill or a crash
        ("airflow-api-server", PORTS["airflow"], _api_server_healthy, signal.SIGKILL, -signal.SIGKILL),
        ("api", PORTS["api"], _api_ready, signal.SIGKILL, -signal.SIGKILL),
        # SIGTERM to the server alone, not through `devstack stop`: MinIO shuts down and exits 0 (a clean exit)
        ("minio", PORTS["minio"], _minio_live, signal.SIGTERM, 0),
    ],
    ids=["airflow-api-server-killed", "api-killed", "minio-terminated"],
)
def test_a_server_that_exits_is_started_again_and_answers_healthy_in_a_new_process(
    stack_env, name: str, port: int, healthy: Callable[[], bool], sent: signal.Signals, exit_code: int
) -> None:
    supervisor = processes.recorded_process(name)
    assert supervisor is not None, f"{name} is not running: run `make up`"
    wait_until(healthy, f"{name} to answer healthy before it is killed", timeout_s=60, ignoring=ANSWERS)
    (server,) = supervisor.children()  # the server itself, which the supervisor runs (its only child)
    assert server.pid in _listening(port), f"{name}'s process {server.pid} does not listen on port {port}"
    log = paths.LOGS / f"{name}.log"
    logged = log.stat().st_size

    server.send_signal(sent)

    def back() -> bool:
        new = [c.pid for c in supervisor.children() if c.pid != server.pid and c.status() != psutil.STATUS_ZOMBIE]
        return len(new) == 1 and healthy() and new[0] in _listening(port)

    wait_until(back, f"{name} to answer healthy on port {port} in a new process; see {log}", BACK_WITHIN_S, ANSWERS)
    assert not server.is_running()
    assert processes.recorded_process(name) == supervisor  # the same supervisor: status and down still find it
    with log.open("rb") as f:
        f.seek(logged)
        assert f"exited with {exit_code}: starting it again".encode() in f.read(), f"no restart noted in {log}"
