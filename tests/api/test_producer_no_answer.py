"""A record that gets no answer at all within the request's wait replaces the producer when the producer acknowledged
nothing since the record was sent, and only then (``RecordProducer._unanswered_records``).

With the API's settings, the request waits KAFKA_DELIVERY_TIMEOUT_MS + 150 ms (``ApiSettings.ack_wait_s``), so
kafka-python's own delivery timeout answers first whenever its I/O thread works: a hung broker gives an expiry
(tests/api/test_kafka_stalls.py), never "no answer". No answer at all comes when kafka-python stops sending without
failing anything (a producer without a producer id), which no test can bring about at a chosen moment. These tests
make the request's wait shorter than kafka-python's request and delivery timeouts instead, so that a record stalled
in a real (scratch) broker gets no answer and does not expire within it. ``ack_wait_s`` is not read from the
environment, so the API runs in this process (uvicorn in a thread), built by ``create_app`` with those settings.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from kafka import KafkaProducer
from kafka.producer.future import FutureRecordMetadata

from api.app import create_app
from api.producer import OutgoingRecord, RecordProducer
from api.settings import ApiSettings
from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import read_all
from tests.api.scratch_kafka import ScratchKafka, connected_gauge
from tests.api_process import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

ACK_WAIT_S = 2.0
"""The request's wait in these tests; kafka-python's timeouts below are far longer."""
REQUEST_TIMEOUT_MS = 10_000
DELIVERY_TIMEOUT_MS = 30_000
RETRY_S = 0.5
"""KAFKA_CONNECT_RETRY_S."""
BACK_WITHIN_S = 15.0
"""How soon after the broker answers again the API must be ready (a connection attempt blocks up to 1 s)."""
REPLACING = "kafka producer unusable, replacing it"
NO_ANSWER = f"no acknowledgement nor error within {ACK_WAIT_S} s"
"""The error ``_unanswered_records`` replaces the producer after (a delivery that expired names another)."""

TRIPLES = list(generate_triples(seed=53, count=10, repeat_percent=0))
GEOS = [t.geo.model_dump(mode="json") for t in TRIPLES]
USERS = [t.user.model_dump(mode="json") for t in TRIPLES]


class Collected(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class ShortWaitSettings(ApiSettings):
    """The API's settings, but requests wait ACK_WAIT_S for Kafka's answer."""

    @property
    def ack_wait_s(self) -> float:
        return ACK_WAIT_S


@contextlib.contextmanager
def api_in_process(settings: ApiSettings) -> Iterator[tuple[httpx.Client, list[logging.LogRecord]]]:
    """The API serving on a free port from a thread of this process, ready for records; a client on it and the
    records ``api.producer`` logs. What ``create_app`` changes in this process (loggers, gc.freeze) is undone after."""
    configured = [logging.getLogger(name) for name in ("api", "uvicorn", "uvicorn.error", "kafka")]
    saved = [(logger, logger.handlers[:], logger.propagate, logger.level) for logger in configured]
    collector = Collected()
    producer_log = logging.getLogger("api.producer")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None))
    producer_log.addHandler(collector)
    thread = threading.Thread(target=server.run, name="api-in-process", daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until(lambda: server.started, "the API to start", timeout_s=30)
            wait_until(lambda: client.get("/ready").status_code == 200, "the API to be ready", timeout_s=30)
            yield client, collector.records
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        producer_log.removeHandler(collector)
        for logger, handlers, propagate, level in saved:
            logger.handlers[:], logger.propagate = handlers, propagate
            logger.setLevel(level)
        gc.unfreeze()  # the app's startup froze this process's objects
    assert not thread.is_alive(), "the API did not stop"


def handed_to_the_producer(monkeypatch: pytest.MonkeyPatch) -> dict[str, threading.Event]:
    """Per entity, an event set once the API hands a record of it to kafka-python (a spy on ``_send_now``)."""
    handed = {entity: threading.Event() for entity in ("pin", "geo", "user")}
    send_now = RecordProducer._send_now

    def spy(producer: KafkaProducer, record: OutgoingRecord) -> FutureRecordMetadata:
        future = send_now(producer, record)
        handed[record.topic.rpartition(".")[2]].set()
        return future

    monkeypatch.setattr(RecordProducer, "_send_now", staticmethod(spy))
    return handed


def moments_of(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[float]]:
    """When the producer registered an acknowledgement and when it gave up on records that got no answer, as seen
    in the API's event loop (spies on ``_acked`` and ``_unanswered_records``). A client's clock cannot order the
    two: when the loop is held up, it handles both in one pass and the answers reach the clients in either order."""
    moments: dict[str, list[float]] = {"acknowledged": [], "gave up": []}
    acked, unanswered = RecordProducer._acked, RecordProducer._unanswered_records

    def acked_spy(self: RecordProducer, producer: KafkaProducer) -> None:
        moments["acknowledged"].append(time.monotonic())
        acked(self, producer)

    def unanswered_spy(self: RecordProducer, producer: KafkaProducer, sent_at: float) -> None:
        moments["gave up"].append(time.monotonic())
        unanswered(self, producer, sent_at)

    monkeypatch.setattr(RecordProducer, "_acked", acked_spy)
    monkeypatch.setattr(RecordProducer, "_unanswered_records", unanswered_spy)
    return moments


def settings_for(broker: ScratchKafka, scratch_prefix: str, **extra: object) -> ShortWaitSettings:
    return ShortWaitSettings(
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        PINTEREST_TOPIC_PREFIX=scratch_prefix,
        API_KEY="",
        KAFKA_REQUEST_TIMEOUT_MS=REQUEST_TIMEOUT_MS,
        KAFKA_DELIVERY_TIMEOUT_MS=DELIVERY_TIMEOUT_MS,
        KAFKA_CONNECT_RETRY_S=RETRY_S,
        **extra,
    )


def replacements(logged: list[logging.LogRecord]) -> list[str]:
    """The errors the producer was replaced after, in order."""
    return [getattr(record, "error", "") for record in logged if record.getMessage() == REPLACING]


def stored(bootstrap: str, topic: str, answer: dict[str, object]) -> object:
    """The value Kafka holds where an acceptance says the record is."""
    values = {(r.partition, r.offset): json.loads(r.value) for r in read_all(bootstrap, topic)}
    return values.get((answer["partition"], answer["offset"]))


def test_a_record_unanswered_while_nothing_was_acknowledged_replaces_the_producer(
    broker: ScratchKafka,
    scratch_prefix: str,
) -> None:
    """The broker hangs (SIGSTOP) for longer than the request's wait but far shorter than kafka-python's request
    and delivery timeouts: the record gets no answer and does not expire; the client gets 503, the producer is
    replaced, and once the broker answers again a new producer stores the next record."""
    settings = settings_for(broker, scratch_prefix)
    with api_in_process(settings) as (client, logged):
        first = client.post("/geo/", json=GEOS[0])
        assert first.status_code == 200, first.text  # a producer that works, and acknowledged before the stall
        assert connected_gauge(client) == "ingest_kafka_producer_connected 1.0"

        broker.pause()
        try:
            started = time.monotonic()
            unanswered = client.post("/geo/", json=GEOS[1])
            waited_s = time.monotonic() - started
            ready = client.get("/ready")  # the broker still hangs: no new producer can connect yet
            gauge = connected_gauge(client)
        finally:
            broker.resume()

        assert unanswered.status_code == 503, unanswered.text
        assert unanswered.headers["Retry-After"] == str(settings.retry_after_s)
        assert unanswered.json()["detail"] == "Kafka is unavailable, the record was not stored"
        assert ACK_WAIT_S <= waited_s < REQUEST_TIMEOUT_MS / 1000  # it waited the request's wait, not an expiry
        assert ready.status_code == 503, ready.text
        assert ready.json()["detail"].startswith("producer being replaced after KafkaTimeoutError")
        assert NO_ANSWER in ready.json()["detail"]
        assert gauge == "ingest_kafka_producer_connected 0.0"
        assert len(replacements(logged)) == 1
        assert NO_ANSWER in replacements(logged)[0]

        wait_until(lambda: client.get("/ready").status_code == 200, "a new producer", timeout_s=BACK_WITHIN_S)
        assert connected_gauge(client) == "ingest_kafka_producer_connected 1.0"
        later = client.post("/geo/", json=GEOS[2])
        assert later.status_code == 200, later.text
        assert len(replacements(logged)) == 1

    assert stored(broker.bootstrap, f"{scratch_prefix}.geo", later.json()) == GEOS[2]


def test_a_record_unanswered_after_the_producer_acknowledged_another_keeps_the_producer(
    broker: ScratchKafka,
    scratch_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broker hangs with a record in flight; a second record, sent meanwhile, lingers in the producer for longer
    than the request's wait. The broker answers again and acknowledges the first: the second gets no answer within
    its wait (503), but the producer acknowledged a record since it was sent, so it is kept, and it stores the second
    record when its linger ends (the client's 503 notwithstanding: delivery is at-least-once)."""
    linger_s = 5.0
    settings = settings_for(
        broker, scratch_prefix, KAFKA_LINGER_MS=int(linger_s * 1000), KAFKA_BATCH_BYTES=1024, KAFKA_COMPRESSION="none"
    )
    large = [{**geo, "country": "x" * 2048} for geo in GEOS[3:5]]  # over KAFKA_BATCH_BYTES: a full batch, sent at once
    answers: dict[str, tuple[float, httpx.Response]] = {}

    with api_in_process(settings) as (client, logged):

        def post(name: str, path: str, record: dict[str, object]) -> None:
            response = httpx.post(f"{client.base_url}{path}", json=record, timeout=30)
            answers[name] = (time.monotonic(), response)

        assert client.post("/geo/", json=large[0]).status_code == 200
        handed = handed_to_the_producer(monkeypatch)
        moments = moments_of(monkeypatch)
        broker.pause()
        try:
            in_flight = threading.Thread(target=post, args=("in flight", "/geo/", large[1]))
            in_flight.start()
            assert handed["geo"].wait(10), "the in-flight record did not reach the producer"  # it waits for the broker
            lingering = threading.Thread(target=post, args=("lingering", "/user/", USERS[1]))
            lingering_sent = time.monotonic()
            lingering.start()
            assert handed["user"].wait(10), "the lingering record did not reach the producer"  # it lingers
        finally:
            resumed = time.monotonic()  # before the signal: nothing can be acknowledged before it
            broker.resume()
        in_flight.join(timeout=30)
        lingering.join(timeout=30)
        acknowledged_moments, gave_up_moments = list(moments["acknowledged"]), list(moments["gave up"])
        # (before the lingering record's own acknowledgement, due when its linger ends)
        ready = client.get("/ready")
        gauge = connected_gauge(client)

        acknowledged_at, acknowledged = answers["in flight"]
        gave_up_at, unanswered = answers["lingering"]
        assert acknowledged.status_code == 200, acknowledged.text
        assert unanswered.status_code == 503, unanswered.text
        assert unanswered.json()["detail"] == "Kafka is unavailable, the record was not stored"
        assert ACK_WAIT_S <= gave_up_at - lingering_sent < linger_s  # it waited the request's wait, no answer came
        assert resumed < acknowledged_at
        assert len(acknowledged_moments) == 1  # the in-flight record's
        assert len(gave_up_moments) == 1  # on the lingering record
        assert resumed < acknowledged_moments[0] < gave_up_moments[0]  # acknowledged while the other waited
        assert ready.status_code == 200, ready.text
        assert gauge == "ingest_kafka_producer_connected 1.0"
        assert replacements(logged) == []

        user_topic = f"{scratch_prefix}.user"
        wait_until(lambda: len(read_all(broker.bootstrap, user_topic)) == 1, "the lingering record to be stored")
        assert replacements(logged) == []

    assert [json.loads(r.value) for r in read_all(broker.bootstrap, f"{scratch_prefix}.user")] == [USERS[1]]
    assert stored(broker.bootstrap, f"{scratch_prefix}.geo", acknowledged.json()) == large[1]
