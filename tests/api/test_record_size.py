"""Record size: a body at the API's limit is stored; a record over Kafka's limit gets 413 and harms no other record."""

from __future__ import annotations

import json
import random
import string
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from kafka import TopicPartition

from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import end_offsets, read_all
from tests.api_process import RunningApi, api_on_limited_topics

LIMIT = 1_048_576  # the API's default API_MAX_BODY_BYTES
TOPIC_MAX_MESSAGE_BYTES = 65_536
PIN = next(generate_triples(seed=5, count=1)).pin.model_dump(mode="json", exclude_none=True)  # as the API stores it


def letters(count: int, seed: int) -> str:
    """Random letters: they compress to about 70 %, so a compressed batch stays over a limit it is well over."""
    return "".join(random.Random(seed).choices(string.ascii_letters, k=count))


def pin_body(size: int, seed: int = 0, unique_id: str | None = None) -> bytes:
    """A compact pin body of exactly ``size`` bytes (its description fills the rest)."""
    pin = {**PIN, "unique_id": unique_id or str(uuid.uuid4()), "description": ""}
    empty = len(json.dumps(pin, separators=(",", ":")))
    body = json.dumps({**pin, "description": letters(size - empty, seed)}, separators=(",", ":")).encode()
    assert len(body) == size
    return body


@pytest.fixture(scope="module")
def small_topics_api(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """An API whose topics take records of at most TOPIC_MAX_MESSAGE_BYTES (compressed batch) each."""
    prefix, log_path = f"test-size-{uuid.uuid4().hex[:10]}", tmp_path_factory.mktemp("size") / "api.log"
    with api_on_limited_topics(stack_env, prefix, log_path, TOPIC_MAX_MESSAGE_BYTES, partitions=3) as api:
        yield api


def post_until_answered(url: str, body: bytes, deadline_s: float = 15) -> httpx.Response:
    """Post like a client honouring Retry-After: again after each 503, until another answer or the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        response = httpx.post(url, content=body, timeout=10)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))


def test_a_body_at_the_api_limit_is_accepted_and_stored_unchanged(api: RunningApi) -> None:
    body = pin_body(LIMIT)
    response = httpx.post(f"{api.url}/pin/", content=body, timeout=30)
    assert response.status_code == 200, response.text
    stored = {(r.partition, r.offset): r for r in read_all(api.bootstrap, api.topic("pin"))}
    assert json.loads(stored[(response.json()["partition"], response.json()["offset"])].value) == json.loads(body)


def test_a_record_over_kafkas_limit_gets_413_and_later_records_are_stored(small_topics_api: RunningApi) -> None:
    api, unique_id = small_topics_api, str(uuid.uuid4())  # one key: the same partition for both records
    before = end_offsets(api.bootstrap, api.topics)
    too_large = httpx.post(f"{api.url}/pin/", content=pin_body(4 * TOPIC_MAX_MESSAGE_BYTES, 1, unique_id), timeout=10)
    assert too_large.status_code == 413, too_large.text
    assert "retry-after" not in too_large.headers
    assert "Kafka" in too_large.json()["detail"]
    assert end_offsets(api.bootstrap, api.topics) == before

    small = pin_body(2_000, 2, unique_id)
    response = post_until_answered(f"{api.url}/pin/", small)
    assert response.status_code == 200, response.text
    topic = api.topic("pin")
    stored_since = {
        (r.partition, r.offset): json.loads(r.value)
        for r in read_all(api.bootstrap, topic)
        if r.offset >= before[TopicPartition(topic, r.partition)]
    }
    assert stored_since == {(response.json()["partition"], response.json()["offset"]): json.loads(small)}


def test_a_batch_record_over_kafkas_limit_is_invalid_as_too_large(small_topics_api: RunningApi) -> None:
    api = small_topics_api
    small, large = pin_body(2_000, 3), pin_body(4 * TOPIC_MAX_MESSAGE_BYTES, 4)
    body = b"[" + small + b"," + large + b"]"
    response = post_until_answered(f"{api.url}/pin/batch", body)
    assert response.status_code == 207, response.text
    answer = response.json()
    assert (answer["accepted"], answer["invalid"], answer["unavailable"]) == (1, 1, 0)
    assert [item["status"] for item in answer["results"]] == ["accepted", "invalid"]
    assert [(e["field"], e["type"]) for e in answer["results"][1]["errors"]] == [("", "too_large")]
    accepted = answer["results"][0]
    stored = {(r.partition, r.offset): json.loads(r.value) for r in read_all(api.bootstrap, api.topic("pin"))}
    assert stored[(accepted["partition"], accepted["offset"])] == json.loads(small)
    assert json.loads(large) not in stored.values()
