"""Edges of the ingress found by review: a bootstrap address without a port, a client that hangs up mid-upload,
a producer that cannot be created for a reason other than Kafka, settings that only fail late, and the batch status
when nothing was accepted."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from api import producer as producer_module
from api.ops import kafka_reachable
from api.producer import RecordProducer
from api.records import batch_status
from api.schemas import BatchResult
from api.settings import ApiSettings
from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import read_all
from tests.api_process import RunningApi, metric_values, running_api

GEO = next(generate_triples(seed=5, count=1)).geo.model_dump(mode="json")
CASES = [("/geo/", "499"), ("/geo/", "500"), ("unmatched", "500"), ("unmatched", "499")]
"""(route, status) of the request-duration samples an abandoned upload could be counted under."""


def test_a_bootstrap_address_without_a_port_is_ready_and_stores_records(
    stack_env: dict[str, str], api_topics: str, tmp_path: Path
) -> None:
    """Kafka's clients take a host without a port as port 9092, where the stack's Kafka listens: /ready agrees."""
    host, _, port = stack_env["KAFKA_BOOTSTRAP_SERVERS"].rpartition(":")
    assert port == "9092", "this test needs Kafka on its default port"
    extra = {"KAFKA_BOOTSTRAP_SERVERS": host}
    with running_api(stack_env, api_topics, tmp_path / "api.log", extra) as url:  # waits for /ready to answer 200
        assert httpx.get(f"{url}/ready", timeout=10).json() == {"status": "ready", "detail": ""}
        answer = httpx.post(f"{url}/geo/", json=GEO, timeout=10)
    assert answer.status_code == 200, answer.text
    stored = {(r.partition, r.offset) for r in read_all(stack_env["KAFKA_BOOTSTRAP_SERVERS"], f"{api_topics}.geo")}
    assert (answer.json()["partition"], answer.json()["offset"]) in stored


@pytest.mark.parametrize(
    ("servers", "reachable"),
    [
        ("127.0.0.1", True),
        ("PLAINTEXT://127.0.0.1:9092", True),
        ("127.0.0.1:1, 127.0.0.1", True),  # the second one answers
        ("127.0.0.1:1", False),
        ("127.0.0.1:port", False),
        ("127.0.0.1:99999", False),
    ],
)
def test_kafka_reachable_reads_addresses_as_the_producer_does(
    stack_env: dict[str, str], servers: str, reachable: bool
) -> None:
    assert stack_env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
    assert asyncio.run(kafka_reachable(servers)) is reachable


def test_a_client_hanging_up_mid_upload_is_not_counted_as_a_server_error(api: RunningApi) -> None:
    def samples() -> dict[str, float]:
        names = [f'ingest_request_duration_seconds_count{{method="POST",route="{r}",status="{s}"}}' for r, s in CASES]
        return metric_values(httpx.get(f"{api.url}/metrics", timeout=10).text, *names)

    before = samples()
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        head = b"POST /geo/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        client.sendall(head)
        client.sendall(b'{"ind": 1')  # 9 of the 100 bytes announced, then the client goes
    deadline = time.monotonic() + 10
    while (after := samples()) == before:
        assert time.monotonic() < deadline, "the abandoned request was never timed"
        time.sleep(0.1)
    changed = {name: after[name] - before[name] for name in after if after[name] != before[name]}
    assert changed == {'ingest_request_duration_seconds_count{method="POST",route="/geo/",status="499"}': 1.0}


def test_an_unexpected_error_creating_the_producer_is_logged_and_retried(
    stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only Kafka's and the network's errors were retried: any other one ended the reconnecting task unseen and left
    the API unready for good."""
    real, attempts = producer_module.KafkaProducer, []

    def fails_once(**config: object) -> object:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise RuntimeError("a library kafka-python needs is missing")
        return real(**config)

    monkeypatch.setattr(producer_module, "KafkaProducer", fails_once)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("api.producer").addHandler(handler)
    settings = ApiSettings(KAFKA_BOOTSTRAP_SERVERS=stack_env["KAFKA_BOOTSTRAP_SERVERS"], KAFKA_CONNECT_RETRY_S=0.2)

    async def connect() -> bool:
        producer = RecordProducer(settings, [f"test-connect-{uuid.uuid4().hex[:8]}.geo"])
        await producer.start()
        first = producer.connected
        deadline = time.monotonic() + 20
        while not producer.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        connected = producer.connected
        await producer.close()  # raised the task's error before
        return not first and connected

    try:
        assert asyncio.run(connect())
    finally:
        logging.getLogger("api.producer").removeHandler(handler)
    assert len(attempts) == 2
    failures = [r for r in records if r.getMessage() == "creating the kafka producer failed, retrying"]
    assert len(failures) == 1 and failures[0].exc_info is not None
    assert "a library kafka-python needs is missing" in str(failures[0].exc_info[1])


@pytest.mark.parametrize(("codec", "module"), [("lz4", "lz4"), ("snappy", "snappy"), ("zstd", "zstandard")])
def test_a_compression_codec_is_refused_at_start_when_its_library_is_missing(codec: str, module: str) -> None:
    if importlib.util.find_spec(module) is not None:
        assert ApiSettings(KAFKA_COMPRESSION=codec).kafka_compression == codec
        return
    with pytest.raises(ValidationError, match=f"KAFKA_COMPRESSION '{codec}' needs the package"):
        ApiSettings(KAFKA_COMPRESSION=codec)


def test_the_log_level_takes_any_case_and_refuses_an_unknown_one_by_name() -> None:
    assert ApiSettings(API_LOG_LEVEL="WARNING").log_level == "warning"
    with pytest.raises(ValidationError, match="API_LOG_LEVEL"):
        ApiSettings(API_LOG_LEVEL="warn")


@pytest.mark.parametrize(
    ("accepted", "invalid", "unavailable", "status"),
    [
        (3, 0, 0, 200),
        (0, 3, 0, 422),
        (0, 0, 3, 503),
        (0, 2, 1, 503),  # a record too large for Kafka (invalid) beside one Kafka could not take: retry later
        (1, 1, 1, 207),
        (2, 1, 0, 207),
        (2, 0, 1, 207),
    ],
)
def test_the_batch_status_follows_the_documented_rule(
    accepted: int, invalid: int, unavailable: int, status: int
) -> None:
    result = BatchResult(accepted=accepted, invalid=invalid, unavailable=unavailable, request_id="r", results=[])
    assert batch_status(result) == status
