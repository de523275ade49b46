"""A topic deleted while the API uses it: records for it name it missing without holding up the event loop, and a
record caught in flight by the deletion does not stop the API from storing later records (of any topic)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from include.emulator.generate import generate_triples
from include.records import ENTITIES
from tests.api_process import running_api
from tests.waiting import wait_until

TRIPLE = next(generate_triples(seed=43, count=1, repeat_percent=0))
GEO, USER = TRIPLE.geo.model_dump(mode="json"), TRIPLE.user.model_dump(mode="json")
RETRY_S = 0.5
"""The API's KAFKA_CONNECT_RETRY_S."""
MAX_BLOCK_MS = 5_000
"""The API's KAFKA_MAX_BLOCK_MS in the event-loop test: how long a send without the topic's metadata blocks, in
a worker thread or, were it called there, on the event loop. Five times the default, so that a held-up loop
stands out from a busy machine's pauses."""
HEALTH_BOUND_S = MAX_BLOCK_MS / 1000 / 2
"""Slowest acceptable /health while records for a deleted topic arrive: a send on the loop would take twice that."""


@pytest.fixture
def prefix(stack_env: dict[str, str]) -> Iterator[str]:
    """Topics ``<prefix>.pin|geo|user`` (3 partitions); whichever of them exist afterwards are deleted."""
    bootstrap, prefix = stack_env["KAFKA_BOOTSTRAP_SERVERS"], f"test-deleted-{uuid.uuid4().hex[:10]}"
    names = [f"{prefix}.{entity}" for entity in ENTITIES]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, 3, 1, topic_configs={"retention.ms": "-1"}) for name in names])
    finally:
        admin.close()
    yield prefix
    left = sorted(set(names) & topics(bootstrap))
    if left:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.delete_topics(left)
        finally:
            admin.close()


@pytest.fixture
def api_url(stack_env: dict[str, str], prefix: str, tmp_path: Path) -> Iterator[str]:
    with running_api(stack_env, prefix, tmp_path / "api.log", {"KAFKA_CONNECT_RETRY_S": str(RETRY_S)}) as url:
        yield url


@pytest.fixture
def long_block_api_url(stack_env: dict[str, str], prefix: str, tmp_path: Path) -> Iterator[str]:
    settings = {"KAFKA_CONNECT_RETRY_S": str(RETRY_S), "KAFKA_MAX_BLOCK_MS": str(MAX_BLOCK_MS)}
    with running_api(stack_env, prefix, tmp_path / "api.log", settings) as url:
        yield url


def topics(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def delete_topic(bootstrap: str, name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([name])
    finally:
        admin.close()
    wait_until(lambda: name not in topics(bootstrap), f"{name} to be deleted")


def create_topic(bootstrap: str, name: str) -> None:
    """Create ``name`` (3 partitions, as the fixture does), retrying while Kafka still finishes deleting it."""

    def created() -> bool:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic(name, 3, 1, topic_configs={"retention.ms": "-1"})])
        except Exception:  # TopicAlreadyExistsError while the deletion completes: try again
            return name in topics(bootstrap)
        finally:
            admin.close()
        return True

    wait_until(created, f"{name} to be created")


def post_until(client: httpx.Client, path: str, body: dict[str, object], done: Callable[[httpx.Response], bool]):
    """Post ``body`` again (as a client honouring Retry-After would, but faster) until ``done``; the last answer."""
    deadline = time.monotonic() + 30
    while True:
        response = client.post(path, json=body)
        if done(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_a_record_caught_by_a_topic_deletion_does_not_stop_later_records(
    stack_env: dict[str, str], prefix: str, api_url: str
) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    with httpx.Client(base_url=api_url, timeout=10) as client:
        assert client.post("/geo/", json=GEO).status_code == 200
        delete_topic(bootstrap, f"{prefix}.geo")
        assert client.post("/geo/", json=GEO).status_code == 503  # in flight while the topic is gone
        create_topic(bootstrap, f"{prefix}.geo")

        user = post_until(client, "/user/", USER, lambda r: r.status_code == 200)
        assert user.status_code == 200, user.text
        geo = post_until(client, "/geo/", GEO, lambda r: r.status_code == 200)
        assert geo.status_code == 200, geo.text
        assert geo.json()["topic"] == f"{prefix}.geo"
        wait_until(lambda: client.get("/ready").status_code == 200, "the API to be ready", timeout_s=10)


def test_records_for_a_deleted_topic_name_it_and_do_not_hold_up_the_event_loop(
    stack_env: dict[str, str], prefix: str, long_block_api_url: str
) -> None:
    api_url = long_block_api_url
    topic = f"{prefix}.geo"
    latencies: list[float] = []
    failures: list[BaseException] = []  # a failed probe ends the thread, so the test reads them afterwards
    stop = threading.Event()

    def probe_health() -> None:
        try:
            with httpx.Client(base_url=api_url, timeout=10) as probe:
                while not stop.is_set():
                    started = time.monotonic()
                    status = probe.get("/health").status_code
                    latencies.append(time.monotonic() - started)
                    assert status == 200, status
                    time.sleep(0.02)
        except BaseException as failure:
            failures.append(failure)

    with httpx.Client(base_url=api_url, timeout=10) as client:
        assert client.post("/geo/", json=GEO).status_code == 200
        delete_topic(stack_env["KAFKA_BOOTSTRAP_SERVERS"], topic)
        prober = threading.Thread(target=probe_health)
        prober.start()
        try:
            named = post_until(client, "/geo/", GEO, lambda r: f"{topic} does not exist" in r.text)
            again = client.post("/geo/", json=GEO)
            ready = client.get("/ready")
        finally:
            stop.set()
            prober.join()

    assert named.status_code == 503, named.text
    assert f"{topic} does not exist" in named.json()["detail"], named.text
    assert int(named.headers["retry-after"]) >= 1
    assert again.status_code == 503 and f"{topic} does not exist" in again.json()["detail"], again.text
    assert ready.status_code == 503
    assert ready.json()["detail"] == f"topics missing in Kafka: {topic}"
    assert not failures, failures
    assert latencies and max(latencies) < HEALTH_BOUND_S, f"slowest /health: {max(latencies):.2f} s"
