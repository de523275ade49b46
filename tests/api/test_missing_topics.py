"""Topics that do not exist (a wrong PINTEREST_TOPIC_PREFIX): /ready and the record endpoints name them, and a topic
created later is used without a restart. A topic Kafka could not be asked about is not called missing."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from api.producer import KafkaUnavailableError, absent_topics
from api.settings import ApiSettings
from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import read_all
from tests.api_process import free_port, log_lines, running_api
from tests.waiting import wait_until

GEO = next(generate_triples(seed=21, count=1, repeat_percent=0)).geo.model_dump(mode="json")


@pytest.fixture
def prefix(stack_env: dict[str, str]) -> Iterator[str]:
    """A topic prefix with no topics; whatever a test creates under it is deleted afterwards."""
    prefix = f"test-missing-{uuid.uuid4().hex[:10]}"
    yield prefix
    admin = KafkaAdminClient(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    try:
        created = [topic for topic in admin.list_topics() if topic.startswith(f"{prefix}.")]
        if created:
            admin.delete_topics(created)
    finally:
        admin.close()


RETRY_S = 0.5
"""The APIs' KAFKA_CONNECT_RETRY_S: how often they ask Kafka again about missing topics."""


@contextlib.contextmanager
def api_on(stack_env: dict[str, str], prefix: str, log_path: Path, bootstrap: str) -> Iterator[str]:
    """An API on ``prefix`` and ``bootstrap`` that answers /health (it cannot become ready while its topics are
    missing); yields its URL."""
    settings = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_CONNECT_RETRY_S": str(RETRY_S)}
    with running_api(stack_env, prefix, log_path, settings, until="/health") as url:
        yield url


@pytest.fixture
def api_url(stack_env: dict[str, str], prefix: str, tmp_path: Path) -> Iterator[str]:
    with api_on(stack_env, prefix, tmp_path / "api.log", stack_env["KAFKA_BOOTSTRAP_SERVERS"]) as url:
        yield url


def wait_for(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until it returns true (an HTTP error counts as false); fail naming ``what``."""
    wait_until(check, what, ignoring=(httpx.HTTPError,))


def wait_for_first_check(client: httpx.Client) -> httpx.Response:
    """/ready once the API has asked Kafka about its topics: its first connection may not come within its bounded
    first try (KAFKA_MAX_BLOCK_MS) on a busy machine, and until then /ready says it is connecting."""
    answers: list[httpx.Response] = []

    def checked() -> bool:
        answers.append(client.get("/ready"))
        return answers[-1].json().get("detail", "").startswith("topics missing")

    wait_for(checked, "the API's first look at its topics")
    return answers[-1]


def create_topic(bootstrap: str, name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        admin.close()


def test_missing_topics_are_named_and_a_created_topic_is_used_without_restart(
    stack_env: dict[str, str], prefix: str, api_url: str
) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    with httpx.Client(base_url=api_url, timeout=10) as client:
        ready = wait_for_first_check(client)
        assert ready.status_code == 503
        assert ready.json()["detail"] == f"topics missing in Kafka: {prefix}.geo, {prefix}.pin, {prefix}.user"

        one = client.post("/geo/", json=GEO)
        assert one.status_code == 503
        assert f"{prefix}.geo does not exist" in one.json()["detail"]
        assert "unavailable" not in one.json()["detail"]
        assert int(one.headers["retry-after"]) >= 1

        batch = client.post("/geo/batch", json=[GEO, {"ind": "x"}])
        assert batch.status_code == 503, batch.text  # Kafka took none of the valid records
        missing, invalid = batch.json()["results"]
        assert (missing["status"], invalid["status"]) == ("unavailable", "invalid")
        assert [(e["type"], f"{prefix}.geo does not exist" in e["msg"]) for e in missing["errors"]] == [
            ("topic_missing", True)
        ]
        metrics = client.get("/metrics").text
        assert 'ingest_records_rejected_total{entity="geo",reason="topic_missing"} 2.0' in metrics

        create_topic(bootstrap, f"{prefix}.geo")
        wait_for(lambda: f"{prefix}.geo" not in client.get("/ready").json()["detail"], "the API to see the topic")
        assert client.get("/ready").json()["detail"] == f"topics missing in Kafka: {prefix}.pin, {prefix}.user"
        stored = client.post("/geo/", json=GEO)
        assert stored.status_code == 200, stored.text
        assert stored.json()["topic"] == f"{prefix}.geo"
        assert [json.loads(r.value) for r in read_all(bootstrap, f"{prefix}.geo")] == [GEO]

        for entity in ("pin", "user"):
            create_topic(bootstrap, f"{prefix}.{entity}")
        wait_for(lambda: client.get("/ready").status_code == 200, "the API to become ready")


class Relay:
    """A TCP relay to Kafka's bootstrap address, on a port of its own: cutting it makes Kafka unreachable there.

    The broker advertises its own address, so a client bootstrapped through the relay keeps the connections it
    opened to the broker; only what bootstraps anew (and a TCP check of the bootstrap address) meets the cut.
    """

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self.port = free_port()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = threading.Event()
        self._silent = threading.Event()
        self._accepting: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again) on the relay's port."""
        self._cut.clear()
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.1)
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()

    def cut(self) -> None:
        """Stop listening and close every relayed connection."""
        self._cut.set()
        if self._accepting is not None:  # first: a connection it accepts meanwhile is closed below too
            self._accepting.join(timeout=5)  # it notices within its 0.1 s timeout and closes the listener
            assert not self._accepting.is_alive(), "the relay's accept loop did not stop"
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def black_hole(self) -> None:
        """Keep accepting connections but forward nothing more, either way: Kafka looks up on TCP and never answers."""
        self._silent.set()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while not self._cut.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                if self._silent.is_set():
                    with self._lock:
                        self._open.add(client)  # held open, never read: a black hole
                    continue
                upstream = socket.create_connection(self._upstream)
                with self._lock:
                    self._open |= {client, upstream}
                for source, target in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(source, target, self._silent), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket, silent: threading.Event) -> None:
    """Copy ``source`` to ``target`` until either closes; once ``silent`` is set, drop what arrives instead."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            if not silent.is_set():
                target.sendall(data)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relay(stack_env: dict[str, str]) -> Iterator[Relay]:
    relay = Relay(stack_env["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0])
    relay.start()
    yield relay
    relay.cut()


@contextlib.contextmanager
def client_behind(relay: Relay, stack_env: dict[str, str], prefix: str, log_path: Path) -> Iterator[httpx.Client]:
    """A client of an API reaching Kafka through ``relay``, which answered its first check: no topic exists."""
    with (
        api_on(stack_env, prefix, log_path, relay.address) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        ready = wait_for_first_check(client)
        assert ready.json()["detail"] == f"topics missing in Kafka: {prefix}.geo, {prefix}.pin, {prefix}.user"
        yield client


def test_a_topic_kafka_cannot_be_asked_about_is_unavailable_not_missing_and_asked_again_later(
    stack_env: dict[str, str], prefix: str, relay: Relay, tmp_path: Path
) -> None:
    with client_behind(relay, stack_env, prefix, tmp_path / "api.log") as client:
        relay.cut()
        time.sleep(RETRY_S + 0.5)  # the next record asks Kafka again
        cut_off = client.post("/geo/", json=GEO)
        assert cut_off.status_code == 503, cut_off.text
        assert cut_off.json()["detail"] == "Kafka is unavailable, the record was not stored"
        assert int(cut_off.headers["retry-after"]) >= 1
        assert client.get("/ready").json()["detail"] == f"Kafka at {relay.address} is not reachable"
        metrics = client.get("/metrics").text
        assert 'ingest_records_rejected_total{entity="geo",reason="kafka_unavailable"} 1.0' in metrics
        assert 'reason="topic_missing"' not in metrics
        batch = client.post("/geo/batch", json=[GEO, GEO])
        assert batch.status_code == 503, batch.text
        # the batch's items carry no error text, so its log names the cause, once for both records
        warnings = [line for line in log_lines(tmp_path / "api.log") if line["message"] == "kafka unavailable"]
        assert [line["records"] for line in warnings if "records" in line] == [2]
        assert all(line["error"] for line in warnings), warnings

        relay.start()
        time.sleep(RETRY_S + 0.5)
        missing = client.post("/geo/", json=GEO)
        assert missing.status_code == 503, missing.text
        assert f"{prefix}.geo does not exist" in missing.json()["detail"]


def test_ready_names_kafka_when_it_accepts_connections_but_does_not_answer(
    stack_env: dict[str, str], prefix: str, relay: Relay, tmp_path: Path
) -> None:
    with client_behind(relay, stack_env, prefix, tmp_path / "api.log") as client:
        relay.black_hole()
        time.sleep(RETRY_S + 0.5)  # the next /ready asks Kafka again
        settings = ApiSettings()
        started = time.monotonic()
        silent = client.get("/ready")
        # one check: partitions (KAFKA_MAX_BLOCK_MS), then the admin client's connect and request
        bound_s = (2 * settings.kafka_max_block_ms + settings.kafka_request_timeout_ms) / 1000 + 3  # 3 s to spare
        assert time.monotonic() - started < bound_s
        assert silent.status_code == 503, silent.text
        assert silent.json() == {
            "status": "unready",
            "detail": f"Kafka at {relay.address} is not answering: it did not say whether the topics exist",
        }
        cut_off = client.post("/geo/", json=GEO)
        assert cut_off.status_code == 503, cut_off.text
        assert cut_off.json()["detail"] == "Kafka is unavailable, the record was not stored"


def test_only_a_topic_kafka_says_does_not_exist_is_absent_and_no_answer_is_kafka_unavailable(
    stack_env: dict[str, str], prefix: str
) -> None:
    create_topic(stack_env["KAFKA_BOOTSTRAP_SERVERS"], f"{prefix}.geo")
    topics = [f"{prefix}.geo", f"{prefix}.pin"]
    assert absent_topics(ApiSettings(), topics) == {f"{prefix}.pin"}

    nobody = ApiSettings(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(KafkaUnavailableError, match="Kafka did not say whether the topics exist"):
        absent_topics(nobody, topics)
    assert time.monotonic() - started < (nobody.kafka_max_block_ms + nobody.kafka_request_timeout_ms) / 1000 + 1
