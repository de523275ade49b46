"""Topics that do not exist (a wrong PINTEREST_TOPIC_PREFIX): /ready and the record endpoints name them, and a topic
created later is used without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import read_all
from tests.api_process import REPO, free_port, stop_api

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


@pytest.fixture
def api_url(stack_env: dict[str, str], prefix: str, tmp_path: Path) -> Iterator[str]:
    """An API on ``prefix`` that answers /health (it cannot become ready while its topics are missing)."""
    port = free_port()
    env = {**os.environ, **stack_env, "PINTEREST_TOPIC_PREFIX": prefix, "API_HOST": "127.0.0.1",
           "API_PORT": str(port), "API_WORKERS": "1", "API_KEY": "", "KAFKA_CONNECT_RETRY_S": "0.5"}  # fmt: skip
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "api"], cwd=REPO, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, "the API to answer /health")
        yield url
    finally:
        stop_api(process)


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    """Poll ``check`` until it returns true; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


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
        ready = client.get("/ready")
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
