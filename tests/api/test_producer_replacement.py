"""Replacing the producer while it may still hold records (after a record too large for its topic) answers each
record 200 or 503, nothing else, logs as JSON like every other line, and later records are stored. (A record still
pending when its producer is replaced failing with 503 is proved in ``test_kafka_stalls.py``.)"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import read_all
from tests.api_process import RunningApi, api_on_limited_topics

TOPIC_MAX_MESSAGE_BYTES = 3_000
GEOS = [t.geo.model_dump(mode="json") for t in generate_triples(seed=47, count=50, repeat_percent=0)]


@pytest.fixture
def small_topics_api(stack_env: dict[str, str], tmp_path: Path) -> Iterator[RunningApi]:
    """An API with uncompressed, lingering batches whose topics take at most TOPIC_MAX_MESSAGE_BYTES per batch."""
    prefix, extra = f"test-replace-{uuid.uuid4().hex[:10]}", {"KAFKA_COMPRESSION": "none", "KAFKA_LINGER_MS": "50"}
    with api_on_limited_topics(
        stack_env, prefix, tmp_path / "api.log", TOPIC_MAX_MESSAGE_BYTES, partitions=1, extra_env=extra
    ) as api:
        yield api


def test_replacing_the_producer_with_records_pending_keeps_the_log_json(small_topics_api: RunningApi) -> None:
    api = small_topics_api
    statuses: dict[str, list[int]] = {"large": [], "small": []}
    accepted: list[int] = []  # the ind of every small record answered 200
    lock = threading.Lock()

    def post(kind: str, geo: dict[str, object]) -> None:
        status = httpx.post(f"{api.url}/geo/", json=geo, timeout=10).status_code
        with lock:
            statuses[kind].append(status)
            if kind == "small" and status == 200:
                accepted.append(int(geo["ind"]))  # type: ignore[call-overload]

    for round_ in range(5):
        large = {**GEOS[0], "country": "x" * (2 * TOPIC_MAX_MESSAGE_BYTES)}
        posters = [threading.Thread(target=post, args=("large", large))]
        posters += [threading.Thread(target=post, args=("small", geo)) for geo in GEOS[1 + 5 * round_ : 6 + 5 * round_]]
        for poster in posters:
            poster.start()
        for poster in posters:
            poster.join()
        ready_by = time.monotonic() + 10  # the next round meets a new producer, not the replacement under way
        while httpx.get(f"{api.url}/ready", timeout=10).status_code != 200:
            assert time.monotonic() < ready_by, f"not ready again after round {round_}"
            time.sleep(0.2)

    assert statuses["large"] == [413] * 5
    assert set(statuses["small"]) <= {200, 503}
    log = api.log_path.read_text()
    assert log.count("kafka producer unusable, replacing it") == 5  # each round's large record replaced it
    assert "Task exception was never retrieved" not in log
    for line in log.splitlines():
        json.loads(line)  # no plain-text traceback in the JSON log
    deadline = time.monotonic() + 10
    while (later := httpx.post(f"{api.url}/geo/", json=GEOS[-1], timeout=10)).status_code == 503:
        assert time.monotonic() < deadline, later.text
        time.sleep(0.2)
    assert later.status_code == 200, later.text
    stored = [json.loads(record.value)["ind"] for record in read_all(api.bootstrap, api.topic("geo"))]
    assert set(accepted) | {GEOS[-1]["ind"]} <= set(stored)  # every 200 is in Kafka
    assert set(stored) <= {geo["ind"] for geo in GEOS[1:26]} | {GEOS[-1]["ind"]}  # never a large record
