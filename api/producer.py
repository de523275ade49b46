"""One kafka-python producer per process, awaited from asyncio without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    UnknownTopicOrPartitionError,
)
from kafka.producer.future import FutureRecordMetadata, RecordMetadata

from api.metrics import KAFKA_CONNECTED
from api.settings import ApiSettings

log = logging.getLogger(__name__)

Header = tuple[str, bytes]


# Beyond the body: the key, the request_id header, the record and batch framing, and what re-serialising the
# body may add (a float's ".0", a UUID's hyphens).
RECORD_OVERHEAD_BYTES = 4096


class KafkaUnavailableError(Exception):
    """Kafka did not acknowledge a record in time, is not connected yet or did not say whether a topic exists."""


class RecordTooLargeError(Exception):
    """Kafka refuses the record for its size; sending it again cannot help."""


class TopicMissingError(Exception):
    """Kafka's metadata lacks the record's topic: it does not exist (yet)."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"the topic {topic} does not exist in Kafka")
        self.topic = topic


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A validated record ready for Kafka."""

    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int
    headers: list[Header]


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where Kafka stored an acknowledged record."""

    topic: str
    partition: int
    offset: int


class TopicCheck(enum.Enum):
    """How the last check of the unconfirmed topics went."""

    ANSWERED = "answered"
    """Kafka gave every topic's partitions or its metadata said which do not exist."""
    UNANSWERED = "unanswered"
    """Kafka (or the producer, before its first check) did not say whether some topics exist."""


Failure = KafkaUnavailableError | RecordTooLargeError | TopicMissingError
Outcome = Delivery | Failure


def producer_config(settings: ApiSettings) -> dict[str, object]:
    """The KafkaProducer options: durable (acks=all, idempotent) and quick to fail when Kafka is gone."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "client_id": "pinterest-ingest-api",
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": settings.kafka_compression,
        "linger_ms": settings.kafka_linger_ms,
        "batch_size": settings.kafka_batch_bytes,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
        "delivery_timeout_ms": settings.kafka_delivery_timeout_ms,
        "max_block_ms": settings.kafka_max_block_ms,
        "max_request_size": settings.max_body_bytes + RECORD_OVERHEAD_BYTES,
        "bootstrap_timeout_ms": settings.kafka_max_block_ms,
        "reconnect_backoff_max_ms": 1_000,
    }


def _bridge(
    future: FutureRecordMetadata,
    loop: asyncio.AbstractEventLoop,
    blame: Callable[[BaseException], BaseException],
) -> asyncio.Future[RecordMetadata]:
    """An asyncio future resolved, on ``loop``, when the kafka-python future is (from the sender thread).

    A failure is passed through ``blame`` on the loop, in the order the sender thread reported it.
    """
    waiter: asyncio.Future[RecordMetadata] = loop.create_future()

    def settle_ok(metadata: RecordMetadata) -> None:
        if not waiter.done():
            waiter.set_result(metadata)

    def settle_error(error: BaseException) -> None:
        error = blame(error)
        if not waiter.done():
            waiter.set_exception(error)

    future.add_callback(lambda metadata: loop.call_soon_threadsafe(settle_ok, metadata))
    future.add_errback(lambda error: loop.call_soon_threadsafe(settle_error, error))
    return waiter


def _failed(loop: asyncio.AbstractEventLoop, error: BaseException) -> asyncio.Future[RecordMetadata]:
    """A future that already failed with ``error``."""
    failed: asyncio.Future[RecordMetadata] = loop.create_future()
    failed.set_exception(error)
    return failed


def _has_metadata(producer: KafkaProducer, topic: str) -> bool:
    """True when Kafka gives the topic's partitions within KAFKA_MAX_BLOCK_MS (blocks: call from a thread).

    False does not mean missing: Kafka may not have answered in time.
    """
    try:
        producer.partitions_for(topic)
    except KafkaError as error:
        log.info("no partitions for topic, asking kafka if it exists", extra={"topic": topic, "error": repr(error)})
        return False
    return True


def absent_topics(settings: ApiSettings, topics: Collection[str]) -> set[str]:
    """The topics Kafka's metadata says do not exist (blocks: call from a thread).

    Raises KafkaUnavailableError when Kafka does not answer within KAFKA_MAX_BLOCK_MS (to connect) plus
    KAFKA_REQUEST_TIMEOUT_MS (to answer).
    """
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
            client_id="pinterest-ingest-api",
            bootstrap_timeout_ms=settings.kafka_max_block_ms,
            request_timeout_ms=settings.kafka_request_timeout_ms,
        )
        try:
            described = admin.describe_topics(sorted(topics))
        finally:
            admin.close()
    except (KafkaError, OSError) as error:
        raise KafkaUnavailableError(f"Kafka did not say whether the topics exist: {error!r}") from error
    return {topic["name"] for topic in described if topic["error_code"] == UnknownTopicOrPartitionError.errno}


class RecordProducer:
    """Owns the process's KafkaProducer; connects in the background and reconnects by itself.

    ``send_many`` calls ``KafkaProducer.send`` on the event loop only for topics
    whose metadata is already known (then it only appends to a buffer); the
    first send to a topic runs in a worker thread because it may wait for metadata.

    A topic the producer gets no partitions for is unconfirmed, and Kafka's
    metadata is asked whether it exists: when Kafka says it does not, it is
    missing and its records fail at once with TopicMissingError; when Kafka
    does not answer, its records fail with KafkaUnavailableError (and
    ``topic_check`` is UNANSWERED until Kafka answers a check). Unconfirmed
    topics are asked for again (at most every KAFKA_CONNECT_RETRY_S) when a
    record for one arrives or when readiness is checked, so a topic created
    later is used without a restart.

    After Kafka fails a record with a non-retriable error (such as a record
    over the topic's ``max.message.bytes``), kafka-python's idempotent producer
    fails every later record with that same error: the producer is then
    replaced, and only the first failure is the record's own.
    """

    def __init__(self, settings: ApiSettings, topics: Iterable[str]) -> None:
        self._settings = settings
        self._topics = tuple(topics)
        self._producer: KafkaProducer | None = None
        self._warm_topics: set[str] = set()
        self._unconfirmed_topics = set(self._topics)
        self._unanswered: KafkaUnavailableError | None = KafkaUnavailableError("Kafka was not asked yet")
        self._recheck: asyncio.Task[None] | None = None
        self._next_recheck = 0.0
        self._connector: asyncio.Task[None] | None = None
        self._retired: weakref.WeakSet[KafkaProducer] = weakref.WeakSet()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """True once a producer exists (it reconnects to Kafka by itself from then on)."""
        return self._producer is not None

    @property
    def topic_check(self) -> TopicCheck:
        """How the last topic check went; read it right after ``missing_topics`` for the state that returned."""
        return TopicCheck.ANSWERED if self._unanswered is None else TopicCheck.UNANSWERED

    async def start(self) -> None:
        """Try to connect once (bounded by KAFKA_MAX_BLOCK_MS); on failure keep trying in the background.

        The app serves either way: records get 503 until the producer exists.
        """
        if not await self._try_connect():
            self._connector = asyncio.create_task(self._connect_until_done(), name="kafka-connect")

    async def _try_connect(self) -> bool:
        try:
            producer = await asyncio.to_thread(KafkaProducer, **producer_config(self._settings))
        except (KafkaError, OSError) as error:
            log.warning("kafka not reachable yet, retrying", extra={"error": repr(error)})
            return False
        self._producer = producer
        KAFKA_CONNECTED.set(1)
        self._next_recheck = 0.0
        log.info("kafka producer connected")
        await self.missing_topics()
        return True

    async def _connect_until_done(self) -> None:
        while not await self._try_connect():
            await asyncio.sleep(self._settings.kafka_connect_retry_s)

    async def missing_topics(self) -> frozenset[str]:
        """The topics Kafka's metadata said do not exist; asked for again when the last check is old enough.

        When Kafka did not answer the last check, no topic is missing: records for
        the unconfirmed ones fail with KafkaUnavailableError until Kafka answers.
        One check runs at a time, and concurrent callers wait for it (at most
        KAFKA_MAX_BLOCK_MS twice plus KAFKA_REQUEST_TIMEOUT_MS).
        """
        producer = self._producer
        idle = self._recheck is None or self._recheck.done()
        if producer is not None and self._unconfirmed_topics and idle and time.monotonic() >= self._next_recheck:
            self._recheck = asyncio.create_task(self._check_topics(producer), name="kafka-topics")
        if self._recheck is not None and not self._recheck.done():
            await asyncio.shield(self._recheck)
        return frozenset() if self._unanswered else frozenset(self._unconfirmed_topics)

    async def _check_topics(self, producer: KafkaProducer) -> None:
        """Ask about the unconfirmed topics: the producer for their partitions, then Kafka's metadata for the rest."""
        topics = sorted(self._unconfirmed_topics)
        known = await asyncio.gather(*(asyncio.to_thread(_has_metadata, producer, topic) for topic in topics))
        with_partitions = {topic for topic, found in zip(topics, known, strict=True) if found}
        rest = set(topics) - with_partitions
        try:
            absent = await asyncio.to_thread(absent_topics, self._settings, rest) if rest else set()
        except KafkaUnavailableError as error:
            log.warning(
                "kafka did not say whether topics exist, asking again later",
                extra={"topics": sorted(rest), "error": str(error)},
            )
            self._unconfirmed_topics, self._unanswered = rest, error
        else:
            if absent:
                log.warning("topics missing in kafka", extra={"topics": sorted(absent)})
            self._unconfirmed_topics, self._unanswered = absent, None
        self._next_recheck = time.monotonic() + self._settings.kafka_connect_retry_s
        if producer is self._producer:
            self._warm_topics |= with_partitions
        confirmed = set(topics) - self._unconfirmed_topics
        if confirmed:
            log.info("topics exist in kafka", extra={"topics": sorted(confirmed)})

    async def send_many(self, records: Sequence[OutgoingRecord]) -> list[Outcome]:
        """Produce records; one outcome per record, in order (a Delivery when Kafka acknowledged it)."""
        if any(r.topic in self._unconfirmed_topics for r in records):
            await self.missing_topics()
        producer, unconfirmed, unanswered = self._producer, frozenset(self._unconfirmed_topics), self._unanswered
        if producer is None:
            return [KafkaUnavailableError("not connected to Kafka yet")] * len(records)
        loop = asyncio.get_running_loop()
        waiters: list[asyncio.Future[RecordMetadata]] = []
        for record in records:
            if record.topic in unconfirmed:
                waiters.append(_failed(loop, unanswered or TopicMissingError(record.topic)))
                continue
            try:
                if record.topic in self._warm_topics:
                    future = self._send_now(producer, record)
                else:
                    future = await asyncio.to_thread(self._send_now, producer, record)
                    self._warm_topics.add(record.topic)
            except KafkaError as error:
                log.warning("kafka refused a record", extra={"topic": record.topic, "error": repr(error)})
                waiters.append(_failed(loop, error))
            else:
                waiters.append(_bridge(future, loop, lambda error, p=producer: self._blame(p, error)))
        _, pending = await asyncio.wait(waiters, timeout=self._settings.ack_wait_s)
        for waiter in pending:
            waiter.cancel()
        return [_outcome(waiter) for waiter in waiters]

    def _blame(self, producer: KafkaProducer, error: BaseException) -> BaseException:
        """The error a record's failure stands for; the first non-retriable one retires its producer."""
        if not isinstance(error, KafkaError) or error.retriable:
            return error
        if producer in self._retired:
            return KafkaUnavailableError(f"the Kafka producer is being replaced after an earlier error: {error!r}")
        self._retire(producer, error)
        return error

    def _retire(self, producer: KafkaProducer, error: KafkaError) -> None:
        """Close a producer that fails every record from now on, and connect a new one."""
        log.error("kafka producer unusable after a non-retriable error, replacing it", extra={"error": repr(error)})
        self._retired.add(producer)
        if self._producer is producer:
            self._producer = None
            KAFKA_CONNECTED.set(0)
            self._warm_topics.clear()
        closing = asyncio.create_task(asyncio.to_thread(producer.close, 0), name="kafka-close-retired")
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        if self._connector is None or self._connector.done():
            self._connector = asyncio.create_task(self._connect_until_done(), name="kafka-connect")

    @staticmethod
    def _send_now(producer: KafkaProducer, record: OutgoingRecord) -> FutureRecordMetadata:
        return producer.send(
            record.topic,
            value=record.value,
            key=record.key,
            headers=record.headers,
            timestamp_ms=record.timestamp_ms,
        )

    async def close(self) -> None:
        """Stop connecting, flush what is buffered and close the producer."""
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        await asyncio.gather(*self._closing)
        if self._recheck is not None:
            await asyncio.wait([self._recheck])  # its outcome went to the callers that awaited it
        if self._producer is not None:
            await asyncio.to_thread(self._producer.close, self._settings.kafka_delivery_timeout_ms / 1000 + 1)
            self._producer = None
            KAFKA_CONNECTED.set(0)


def _outcome(waiter: asyncio.Future[RecordMetadata]) -> Outcome:
    if waiter.cancelled():
        return KafkaUnavailableError("Kafka did not acknowledge in time")
    error = waiter.exception()
    if isinstance(error, MessageSizeTooLargeError | RecordListTooLargeError):
        return RecordTooLargeError(f"Kafka refused the record for its size: {error!r}")
    if isinstance(error, KafkaUnavailableError | TopicMissingError):
        return error
    if error is not None:
        return KafkaUnavailableError(f"Kafka did not take the record: {error!r}")
    metadata = waiter.result()
    return Delivery(topic=metadata.topic, partition=metadata.partition, offset=metadata.offset)
