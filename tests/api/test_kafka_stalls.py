"""A broker that hangs or crashes while records are in flight: the API takes records again by itself once it is
back, and it shuts down cleanly while the broker hangs.

Every test here runs its own scratch broker (tests/api/scratch_kafka.py) and its own API, so the stack's Kafka is
not touched; they are slow (a broker start takes seconds), not disruptive.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from kafka.producer.future import FutureRecordMetadata

from api.producer import (
    FORCED_CLOSE_S,
    Delivery,
    KafkaUnavailableError,
    Outcome,
    OutgoingRecord,
    RecordProducer,
)
from api.settings import ApiSettings
from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import read_all
from tests.api.scratch_kafka import ScratchKafka, connected_gauge
from tests.api.sockets import unread_bytes
from tests.api_process import start_api, stop_api
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

GEOS = [t.geo.model_dump(mode="json") for t in generate_triples(seed=41, count=2_000, repeat_percent=0)]
RETRY_S = 0.5
"""The APIs' KAFKA_CONNECT_RETRY_S."""
BACK_WITHIN_S = 30.0
"""How soon after the broker answers again a record must be accepted. It takes a reconnect (backoff 1 s), perhaps
a replaced producer (RETRY_S, a bootstrap of up to 1 s) and a restarted broker's first answers, each of which can
expire once more on a busy machine; the defect this catches is an API that never accepts again."""


@dataclass
class Poster:
    """Posts geo records one after another from a thread, noting when each answer came and what it was."""

    url: str
    answers: list[tuple[float, int, dict[str, object]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Poster:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for geo in itertools.cycle(GEOS):
                if self._stop.is_set():
                    return
                try:
                    response = client.post("/geo/", json=geo)
                except httpx.HTTPError as error:  # noted: the test fails on it if nothing is accepted later
                    self.answers.append((time.monotonic(), -1, {"sent": geo, "answer": repr(error)}))
                else:
                    answer = {"sent": geo, "answer": response.json()}
                    self.answers.append((time.monotonic(), response.status_code, answer))
                    if response.status_code == 200:
                        continue
                time.sleep(0.1)

    def accepted_after(self, moment: float) -> bool:
        return any(at > moment and status == 200 for at, status, _ in self.answers)

    def wait_for_acceptance_after(self, moment: float, within_s: float) -> None:
        deadline = moment + within_s
        while time.monotonic() < deadline and not self.accepted_after(moment):
            time.sleep(0.1)
        recent = [status for at, status, _ in self.answers if at > moment][-10:]
        assert self.accepted_after(moment), f"no record accepted within {within_s} s; the last answers: {recent}"


def assert_stored_as_answered(bootstrap: str, topic: str, answers: list[tuple[float, int, dict[str, object]]]) -> None:
    """Every acknowledged record is in Kafka where its answer says, unchanged."""
    stored = {(r.partition, r.offset): json.loads(r.value) for r in read_all(bootstrap, topic)}
    accepted = [item for _, status, item in answers if status == 200]
    assert accepted
    for item in accepted:
        answer = item["answer"]
        assert stored[(answer["partition"], answer["offset"])] == item["sent"]


def api_on(
    broker: ScratchKafka, stack_env: dict[str, str], scratch_prefix: str, log_path: Path, **extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    return start_api(
        stack_env,
        scratch_prefix,
        log_path,
        {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "KAFKA_CONNECT_RETRY_S": str(RETRY_S), **extra},
    )


@contextlib.contextmanager
def posting_through(
    broker: ScratchKafka, stack_env: dict[str, str], scratch_prefix: str, log_path: Path
) -> Iterator[tuple[Poster, httpx.Client]]:
    """An API on the scratch broker with a Poster already accepted; afterwards, every accepted record is stored."""
    process, url = api_on(broker, stack_env, scratch_prefix, log_path)
    try:
        with Poster(url) as poster, httpx.Client(base_url=url, timeout=10) as client:
            wait_until(lambda: poster.accepted_after(0), "a first record accepted", timeout_s=30)
            yield poster, client
        assert_stored_as_answered(broker.bootstrap, f"{scratch_prefix}.geo", poster.answers)
    finally:
        stop_api(process)


def assert_json_lines(log: str) -> None:
    """No plain-text traceback in the JSON log."""
    for line in log.splitlines():
        json.loads(line)


def test_records_are_accepted_again_after_the_broker_hung_with_records_in_flight(
    broker: ScratchKafka, stack_env: dict[str, str], scratch_prefix: str, tmp_path: Path
) -> None:
    with posting_through(broker, stack_env, scratch_prefix, tmp_path / "api.log") as (poster, client):
        broker.pause()
        try:
            time.sleep(4)  # records in flight time out (1 s), are retried and expire (1.8 s)
        finally:
            broker.resume()
        resumed = time.monotonic()
        poster.wait_for_acceptance_after(resumed, BACK_WITHIN_S)
        assert any(status == 503 for _, status, _ in poster.answers)
        assert client.get("/ready").status_code == 200
        assert connected_gauge(client) == "ingest_kafka_producer_connected 1.0"


def test_a_hung_broker_makes_the_api_unready_without_any_record_sent(
    broker: ScratchKafka, stack_env: dict[str, str], scratch_prefix: str, tmp_path: Path
) -> None:
    """Once every topic is confirmed, records need no metadata request: /ready itself asks Kafka, or a hung broker
    (which still takes TCP connections) would read as ready while every record gets 503."""
    process, url = api_on(broker, stack_env, scratch_prefix, tmp_path / "api.log")
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_until(lambda: client.get("/ready").status_code == 200, "the API to be ready", timeout_s=30)
            broker.pause()
            try:
                # a few asks only: each leaves a connection in the frozen broker's accept queue, and once that is
                # full, connecting fails and /ready says "not reachable" whatever it asks Kafka
                answers = []
                for _ in range(3):
                    time.sleep(RETRY_S)
                    answers.append(client.get("/ready"))
            finally:
                broker.resume()
            not_answering = f"Kafka at {broker.bootstrap} is not answering: it did not say whether the topics exist"
            assert (answers[-1].status_code, answers[-1].json()["detail"]) == (503, not_answering)
            wait_until(lambda: client.get("/ready").status_code == 200, "/ready again", timeout_s=BACK_WITHIN_S)
            assert connected_gauge(client) == "ingest_kafka_producer_connected 1.0"  # nothing was replaced
    finally:
        stop_api(process)


def test_records_are_accepted_again_after_the_broker_crashed_and_restarted(
    broker: ScratchKafka, stack_env: dict[str, str], scratch_prefix: str, tmp_path: Path
) -> None:
    with posting_through(broker, stack_env, scratch_prefix, tmp_path / "api.log") as (poster, client):
        broker.kill()
        wait_until(lambda: connected_gauge(client) == "ingest_kafka_producer_connected 0.0", "the gauge to drop")
        assert client.get("/ready").status_code == 503
        broker.start()
        poster.wait_for_acceptance_after(time.monotonic(), BACK_WITHIN_S)
        assert client.get("/ready").status_code == 200


def test_a_producer_replaced_with_a_record_still_pending_fails_it_with_503_and_logs_json(
    broker: ScratchKafka, stack_env: dict[str, str], scratch_prefix: str, tmp_path: Path
) -> None:
    """The first record expires and the producer is replaced while a second one, in a later batch, still waits
    (kafka-python no longer sends it): closing the replaced producer fails that record instead of raising."""
    log_path = tmp_path / "api.log"
    process, url = api_on(broker, stack_env, scratch_prefix, log_path)
    answers: dict[int, httpx.Response] = {}

    def post(index: int) -> None:
        answers[index] = httpx.post(f"{url}/geo/", json=GEOS[index], timeout=10)

    try:
        assert httpx.post(f"{url}/geo/", json=GEOS[0], timeout=10).status_code == 200
        broker.pause()
        try:
            first = threading.Thread(target=post, args=(1,))
            first.start()
            # the first record's batch is on its way (the hung broker holds it unread): the second gets a batch of
            # its own
            wait_until(lambda: any(unread_bytes(broker.port)), "the first record to reach the broker")
            second = threading.Thread(target=post, args=(2,))
            second.start()
            first.join()
            second.join()
        finally:
            broker.resume()
        later = Poster(url)
        with later:
            later.wait_for_acceptance_after(time.monotonic(), BACK_WITHIN_S)
    finally:
        stop_api(process)

    assert (answers[1].status_code, answers[2].status_code) == (503, 503)
    log = log_path.read_text()
    assert "kafka producer still had records pending when closed, failing them" in log
    assert "Task exception was never retrieved" not in log
    assert_json_lines(log)


def test_the_api_shuts_down_cleanly_while_the_broker_hangs(
    broker: ScratchKafka, stack_env: dict[str, str], scratch_prefix: str, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    log_path = tmp_path / "api.log"
    process, url = api_on(broker, stack_env, scratch_prefix, log_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    api_port = httpx.URL(url).port
    answers: list[int] = []
    sent = [threading.Event() for _ in range(3)]

    def post_batch(index: int) -> None:
        def trace(event: str, _info: dict[str, object]) -> None:
            if event == "http11.send_request_body.complete":
                sent[index].set()

        with httpx.Client(timeout=30) as client:
            response = client.request("POST", f"{url}/geo/batch", json=GEOS[:20], extensions={"trace": trace})
        answers.append(response.status_code)

    def all_read() -> bool:
        """Every request was sent and the API read it (nothing left unread on its connections)."""
        return all(event.is_set() for event in sent) and not any(unread_bytes(api_port))

    try:
        assert httpx.post(f"{url}/geo/", json=GEOS[0], timeout=10).status_code == 200
        assert list(metrics_dir.glob(f"gauge_live*_{process.pid}.db"))
        broker.pause()
        posters = [threading.Thread(target=post_batch, args=(index,)) for index in range(3)]
        for poster in posters:
            poster.start()
        wait_until(all_read, "the three requests to reach the API")
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        stopped_s = time.monotonic() - stopping
        for poster in posters:
            poster.join(timeout=30)
    finally:
        broker.resume()
        if process.poll() is None:
            stop_api(process)

    assert answers == [503, 503, 503]
    assert stopped_s < 15  # about 5 s: the records expire (1.8 s), their 503s, the producer's forced close (1 s)
    log = log_path.read_text()
    assert "Application shutdown complete" in log
    assert "Application shutdown failed" not in log
    assert_json_lines(log)
    assert not list(metrics_dir.glob(f"gauge_live*_{process.pid}.db"))  # this worker's gauges were forgotten


def test_closing_the_producer_while_the_broker_hangs_fails_pending_records_and_stops_its_thread(
    broker: ScratchKafka, scratch_prefix: str
) -> None:
    """A record in flight expires while the producer closes: kafka-python then drops its producer id, so a record
    sent after it never completes and ``KafkaProducer.close`` alone would raise and leave the producer open."""
    settings = ApiSettings(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
    topic = f"{scratch_prefix}.geo"

    def record(index: int) -> OutgoingRecord:
        value = json.dumps(GEOS[index]).encode()
        return OutgoingRecord(topic=topic, key=str(index).encode(), value=value, timestamp_ms=0, headers=[])

    async def scenario() -> tuple[float, list[Outcome]]:
        producer = RecordProducer(settings, [topic])
        await producer.start()
        assert isinstance((await producer.send_many([record(0)]))[0], Delivery)
        broker.pause()
        first = asyncio.create_task(producer.send_many([record(1)]))
        await asyncio.sleep(0.5)  # in flight: a request of its own, timed out and retried before it expires
        second = asyncio.create_task(producer.send_many([record(2)]))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await producer.close()
        return time.monotonic() - started, [*(await first), *(await second)]

    try:
        closed_s, outcomes = asyncio.run(scenario())
    finally:
        broker.resume()
    assert len(outcomes) == 2 and all(isinstance(outcome, KafkaUnavailableError) for outcome in outcomes), outcomes
    assert closed_s < settings.kafka_delivery_timeout_ms / 1000 + FORCED_CLOSE_S + 5  # about 4 s to spare
    assert not [thread.name for thread in threading.enumerate() if thread.name.endswith("-network-thread")]


class RetiredWhileReconnecting(RecordProducer):
    """A producer whose replacement is itself retired (a delivery that expired) while the task that connected it
    still checks its topics, as when a flaky broker fails a record sent on it in that window."""

    retired_while_checking = False

    async def missing_topics(self, ask_kafka: bool = False) -> frozenset[str]:
        current = self._producer
        if asyncio.current_task() is self._connector and current is not None and not self.retired_while_checking:
            self.retired_while_checking = True
            self._blame(current, KafkaTimeoutError("Expiring 1 record(s): delivery timed out"))
        return await super().missing_topics(ask_kafka)


def test_a_producer_retired_while_its_connector_checks_topics_is_replaced_again(
    broker: ScratchKafka, scratch_prefix: str
) -> None:
    settings = ApiSettings(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, KAFKA_CONNECT_RETRY_S=str(RETRY_S))
    topic = f"{scratch_prefix}.geo"
    record = OutgoingRecord(topic=topic, key=b"1", value=json.dumps(GEOS[1]).encode(), timestamp_ms=0, headers=[])

    async def scenario() -> tuple[bool, Outcome]:
        producer = RetiredWhileReconnecting(settings, [topic])
        await producer.start()  # connected at once: no connector yet
        producer._blame(producer._producer, KafkaTimeoutError("Expiring 1 record(s): delivery timed out"))
        deadline = time.monotonic() + BACK_WITHIN_S
        while not (producer.connected and producer.retired_while_checking) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        try:
            return producer.retired_while_checking, (await producer.send_many([record]))[0]
        finally:
            await producer.close()

    retired_while_checking, outcome = asyncio.run(scenario())

    assert retired_while_checking
    assert isinstance(outcome, Delivery), outcome
    stored = [r for r in read_all(broker.bootstrap, topic) if r.offset == outcome.offset]
    assert [json.loads(r.value) for r in stored] == [GEOS[1]]


def test_a_topic_whose_metadata_goes_while_a_record_is_sent_fails_that_record_with_503_not_500(
    broker: ScratchKafka, scratch_prefix: str
) -> None:
    settings = ApiSettings(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
    topic = f"{scratch_prefix}.geo"
    records = [
        OutgoingRecord(topic=topic, key=str(i).encode(), value=json.dumps(GEOS[i]).encode(), timestamp_ms=0, headers=[])
        for i in range(3)
    ]

    async def scenario() -> tuple[list[Outcome], list[Outcome]]:
        producer = RecordProducer(settings, [topic])
        await producer.start()
        kafka = producer._producer
        partition, calls = kafka._partition, itertools.count()

        def losing_the_topic_once(*args: object) -> int:
            # kafka-python's partitioner when its I/O thread dropped the topic after send checked its metadata
            if next(calls) == 1:
                raise ValueError(f"Topic {topic} not found in ClusterMetadata")
            return partition(*args)

        kafka._partition = losing_the_topic_once
        try:
            return await producer.send_many(records), await producer.send_many(records[1:2])
        finally:
            await producer.close()

    first, again = asyncio.run(scenario())

    assert [type(outcome) for outcome in first] == [Delivery, KafkaUnavailableError, Delivery], first
    assert "not found in ClusterMetadata" in str(first[1])  # a 503 naming it, where the request was a 500
    assert isinstance(again[0], Delivery), again
    stored = {r.offset: json.loads(r.value) for r in read_all(broker.bootstrap, topic)}
    assert [stored[outcome.offset] for outcome in (first[0], first[2], again[0])] == [GEOS[0], GEOS[2], GEOS[1]]


class ForgettingAfterItsCheck(RecordProducer):
    """Its Kafka producer forgets a topic's partitions right after ``send_many`` found them known (as when a
    metadata refresh drops them), once, when told to; it counts the records handed to the Kafka producer."""

    forget: str | None = None
    handed = 0

    def _unconfirm_unknown(self, topics: Iterable[str]) -> None:
        topics = list(topics)
        super()._unconfirm_unknown(topics)
        if self.forget in topics and self._producer is not None:
            self._producer._metadata._partitions.pop(self.forget)
            self.forget = None

    def _send_now(self, producer: KafkaProducer, record: OutgoingRecord) -> FutureRecordMetadata:
        self.handed += 1
        return super()._send_now(producer, record)


def test_a_batch_waits_for_a_forgotten_topics_partitions_once_not_once_per_record(
    broker: ScratchKafka, scratch_prefix: str
) -> None:
    settings = ApiSettings(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, KAFKA_MAX_BLOCK_MS="500")
    topic = f"{scratch_prefix}.geo"
    records = [
        OutgoingRecord(topic=topic, key=str(i).encode(), value=json.dumps(GEOS[i]).encode(), timestamp_ms=0, headers=[])
        for i in range(4)
    ]

    async def scenario() -> tuple[list[Outcome], int, list[Outcome]]:
        producer = ForgettingAfterItsCheck(settings, [topic])
        await producer.start()
        try:
            broker.pause()  # nobody answers the producer's question for the partitions
            producer.forget = topic
            try:
                outcomes = await producer.send_many(records)
            finally:
                broker.resume()
            handed = producer.handed
            return outcomes, handed, await producer.send_many(records[:1])
        finally:
            await producer.close()

    outcomes, handed, again = asyncio.run(scenario())

    assert handed == 1  # the old code handed each record over and waited KAFKA_MAX_BLOCK_MS for each
    assert all(isinstance(outcome, KafkaUnavailableError) for outcome in outcomes), outcomes
    assert "KafkaTimeoutError" in str(outcomes[0])
    assert all("for an earlier record of this request" in str(outcome) for outcome in outcomes[1:]), outcomes
    assert isinstance(again[0], Delivery), again  # the topic is asked about again once Kafka answers
    stored = {r.offset: json.loads(r.value) for r in read_all(broker.bootstrap, topic)}
    assert list(stored.values()) == [GEOS[0]]
