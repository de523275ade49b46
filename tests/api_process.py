"""Run the ingest API (``python -m api``) as a subprocess on a free port, producing to chosen topics."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from include.records import ENTITIES

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RunningApi:
    """A started API process: where it listens, its topics and its log file."""

    url: str
    prefix: str
    bootstrap: str
    log_path: Path
    api_key: str | None = None

    def topic(self, entity: str) -> str:
        return f"{self.prefix}.{entity}"

    @property
    def topics(self) -> list[str]:
        return [self.topic(e) for e in ENTITIES]


def log_lines(path: Path) -> list[dict]:
    """The API's JSON log lines written to ``path`` so far."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def metric_values(exposition: str, *names: str) -> dict[str, float]:
    """The value of each named sample in a Prometheus exposition (0 when it is not there yet)."""
    samples = dict(line.rsplit(" ", 1) for line in exposition.splitlines() if line and not line.startswith("#"))
    return {name: float(samples.get(name, 0)) for name in names}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_api(
    stack_env: dict[str, str],
    prefix: str,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    until: str = "/ready",
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m api`` on a free port and wait until ``until`` answers 200 (by default: ready for records)."""
    port = free_port()
    env = {
        **os.environ,
        **stack_env,
        "PINTEREST_TOPIC_PREFIX": prefix,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_WORKERS": "1",
        "API_KEY": "",
        **(extra_env or {}),
    }
    log_file = log_path.open("wb")
    process = subprocess.Popen([sys.executable, "-m", "api"], cwd=REPO, env=env, stdout=log_file, stderr=log_file)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}{until}", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"the API did not answer {until}: {log_path.read_text()[-2000:]}")


@contextlib.contextmanager
def running_api(
    stack_env: dict[str, str],
    prefix: str,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    until: str = "/ready",
) -> Iterator[str]:
    """``start_api`` for the block; yields the API's URL and stops it afterwards."""
    process, url = start_api(stack_env, prefix, log_path, extra_env, until)
    try:
        yield url
    finally:
        stop_api(process)


def stop_api(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def api_on_limited_topics(
    stack_env: dict[str, str],
    prefix: str,
    log_path: Path,
    max_message_bytes: int,
    partitions: int,
    extra_env: dict[str, str] | None = None,
) -> Iterator[RunningApi]:
    """An API whose topics (created here, deleted afterwards) take batches of at most ``max_message_bytes``."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    names = [f"{prefix}.{entity}" for entity in ENTITIES]
    configs = {"max.message.bytes": str(max_message_bytes)}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs) for name in names])
    admin.close()
    try:
        with running_api(stack_env, prefix, log_path, extra_env) as url:
            yield RunningApi(url=url, prefix=prefix, bootstrap=bootstrap, log_path=log_path)
    finally:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.delete_topics(names)
        admin.close()
