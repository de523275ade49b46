"""A private single-node Kafka (KRaft) on free ports, for tests that stall, kill or restart a broker.

It runs from the stack's Kafka installation (``.stack/kafka/libs``) with its own configuration and data directory,
so stopping it disturbs nothing else. A restart keeps its ports and data, as a restarted production broker would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from devstack.services import kafka_java, kafka_properties, kraft_cluster_id
from include.records import ENTITIES
from tests.api_process import free_port
from tests.waiting import wait_until

START_TIMEOUT_S = 90


class ScratchKafka:
    """One broker process in ``directory``; ``bootstrap`` stays the same across restarts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port, self._controller_port = free_port(), free_port()
        self._config = directory / "server.properties"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "the scratch broker is not running"
        return self._process.pid

    def format(self) -> None:
        """Write the configuration and format the KRaft storage (once, before the first start)."""
        self._config.write_text(kafka_properties(self.port, self._controller_port, self.directory / "data", "1"))
        cluster_id = kraft_cluster_id()
        subprocess.run(
            kafka_java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self._config)),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )

    def start(self) -> None:
        """Start the broker and wait until it answers an admin request."""
        log = (self.directory / "kafka.out").open("ab")
        self._process = subprocess.Popen(
            kafka_java("kafka.Kafka", str(self._config), max_heap="384m"),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the scratch Kafka exited with {self._process.returncode}; see {log.name}")
            with contextlib.suppress(Exception):  # any failure: not up yet
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
                admin.list_topics()
                admin.close()
                return
            time.sleep(0.5)
        raise RuntimeError(f"the scratch Kafka did not start within {START_TIMEOUT_S} s; see {log.name}")

    def ensure_running(self) -> None:
        """Start the broker again if a test left it stopped (resume it if it left it frozen)."""
        if self._process is not None and self._process.poll() is None:
            self.resume()
        else:
            self.start()

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): it keeps its connections open and answers nothing, like a hung JVM.

        Returns once every thread of the broker has stopped: SIGSTOP stops them one by one, each when it next runs,
        so on a busy machine the broker could still answer for tens of milliseconds after the signal.
        """
        os.kill(self.pid, signal.SIGSTOP)
        wait_until(lambda: all_threads_stopped(self.pid), "the broker's threads to stop")

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """Crash the broker (SIGKILL), requests in flight and all."""
        os.kill(self.pid, signal.SIGKILL)
        assert self._process is not None
        self._process.wait(timeout=30)

    def stop(self) -> None:
        """Stop the broker for good (it is resumed first, in case it was frozen)."""
        if self._process is None or self._process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.resume()
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def create_topics(self, prefix: str) -> list[str]:
        """Create ``<prefix>.pin|geo|user`` with one partition each; return their names."""
        names = [f"{prefix}.{entity}" for entity in ENTITIES]
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            admin.create_topics([NewTopic(name, 1, 1) for name in names])
        finally:
            admin.close()
        return names


@contextlib.contextmanager
def scratch_kafka(directory: Path) -> Iterator[ScratchKafka]:
    """A formatted, started scratch broker in ``directory``, stopped afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    broker = ScratchKafka(directory)
    broker.format()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def all_threads_stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped (state ``T`` in ``/proc/<pid>/task/*/stat``)."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            states.append(stat.read_text().rpartition(")")[2].split()[0])
    return bool(states) and all(state == "T" for state in states)


def connected_gauge(client: httpx.Client) -> str:
    lines = client.get("/metrics").text.splitlines()
    return next(line for line in lines if line.startswith("ingest_kafka_producer_connected "))
