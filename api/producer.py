"""One kafka-python producer per process, awaited from asyncio without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import (
    KafkaError,
    KafkaTimeoutError,
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

FORCED_CLOSE_S = 1.0
"""How long a producer closed forcefully gets to fail its pending records and stop its I/O thread."""


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
    acked: Callable[[], None],
) -> asyncio.Future[RecordMetadata]:
    """An asyncio future resolved, on ``loop``, when the kafka-python future is (from the sender thread).

    An acknowledgement calls ``acked`` and a failure is passed through ``blame``, on the loop, in the order the
    sender thread reported them.
    """
    waiter: asyncio.Future[RecordMetadata] = loop.create_future()

    def settle_ok(metadata: RecordMetadata) -> None:
        acked()
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


def _waited_in_vain(waiter: asyncio.Future[RecordMetadata]) -> bool:
    """True when handing a record to the producer failed after waiting KAFKA_MAX_BLOCK_MS (for the topic's
    metadata or for buffer space)."""
    return waiter.done() and not waiter.cancelled() and isinstance(waiter.exception(), KafkaTimeoutError)


def _knows_partitions(producer: KafkaProducer, topic: str) -> bool:
    """True when the producer's metadata has the topic's partitions now (never blocks).

    ``KafkaProducer.send`` appends to its buffer at once for such a topic; for another one it first waits up to
    KAFKA_MAX_BLOCK_MS for metadata. kafka-python (3.0.12) has no public way to ask without waiting.
    """
    return producer._metadata.partitions_for_topic(topic) is not None


def _leaves_producer_unusable(error: BaseException) -> bool:
    """True for a record failure after which kafka-python's (3.0.12) idempotent producer sends nothing more.

    After a non-retriable error (such as a record over the topic's ``max.message.bytes``) it fails every later
    record with that same error. After a delivery expired (a broker that hung or restarted, a topic deleted, while
    the record was in flight) it drops its producer id and never asks for a new one: every later record waits
    until the API gives up on it.
    """
    return isinstance(error, KafkaTimeoutError) or (isinstance(error, KafkaError) and not error.retriable)


def close_producer(producer: KafkaProducer, timeout_s: float) -> None:
    """Close a producer, giving its pending records up to ``timeout_s``; those still pending then fail.

    Blocks (call it from a thread) and raises no Kafka error. kafka-python's (3.0.12) ``close`` flushes first and,
    when records are still pending at the timeout (always, for a producer that dropped its producer id), raises
    KafkaTimeoutError and leaves the producer open: its I/O thread is then closed forcefully.
    """
    try:
        producer.close(timeout_s)
        return
    except KafkaTimeoutError as error:
        log.warning(
            "kafka producer still had records pending when closed, failing them",
            extra={"timeout_s": timeout_s, "error": repr(error)},
        )
    producer._sender.force_close()  # no public way in kafka-python 3.0.12
    try:
        producer.close(FORCED_CLOSE_S)
    except KafkaError as error:
        log.error("kafka producer did not close", extra={"error": repr(error)})


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
    whose partitions the producer knows (then it only appends to a buffer).

    A topic the producer does not know the partitions of (at startup, after a
    replacement, after Kafka's metadata dropped a deleted topic) is unconfirmed,
    and is asked about before its records are sent: the producer for its
    partitions and, when it gets none, Kafka's metadata whether it exists (in
    worker threads). When Kafka says it does not, it is missing and its records
    fail at once with TopicMissingError; when Kafka does not answer, its records
    fail with KafkaUnavailableError (and ``topic_check`` is UNANSWERED until
    Kafka answers a check). Unconfirmed topics are asked for again (at most
    every KAFKA_CONNECT_RETRY_S) when a record for one arrives or when readiness
    is checked, so a topic created later is used without a restart.

    A record failure that leaves kafka-python's producer unusable (a
    non-retriable error, a delivery that expired) replaces the producer, and so
    does a record that got no answer at all while the producer acknowledged
    nothing since it was sent. Only the first failure is the record's own; the
    producer's other pending records fail with KafkaUnavailableError. A new
    producer is created at most every KAFKA_CONNECT_RETRY_S.
    """

    def __init__(self, settings: ApiSettings, topics: Iterable[str]) -> None:
        self._settings = settings
        self._topics = tuple(topics)
        self._producer: KafkaProducer | None = None
        self._unconfirmed_topics = set(self._topics)
        self._unchecked_topics: set[str] = set()
        """Unconfirmed topics no check asked about yet: not called missing until one has."""
        self._unanswered: KafkaUnavailableError | None = KafkaUnavailableError("Kafka was not asked yet")
        self._recheck: asyncio.Task[None] | None = None
        self._next_recheck = 0.0
        self._probe: asyncio.Task[None] | None = None
        self._next_probe = 0.0
        self._connector: asyncio.Task[None] | None = None
        self._last_connect_attempt = -math.inf
        self._last_ack = -math.inf
        self._replaced_after: str | None = None
        self._retired: weakref.WeakSet[KafkaProducer] = weakref.WeakSet()
        self._closing: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def connected(self) -> bool:
        """True once a producer exists (it reconnects to Kafka by itself from then on)."""
        return self._producer is not None

    @property
    def not_connected_reason(self) -> str:
        """Why no producer exists (meaningful while ``connected`` is false)."""
        if self._replaced_after is None:
            return "producer not connected yet"
        return f"producer being replaced after {self._replaced_after}"

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
        self._last_connect_attempt = time.monotonic()
        try:
            producer = await asyncio.to_thread(KafkaProducer, **producer_config(self._settings))
        except (KafkaError, OSError) as error:
            log.warning("kafka not reachable yet, retrying", extra={"error": repr(error)})
            return False
        except Exception:  # anything else must not end the reconnecting task unseen: say what, keep trying
            log.exception("creating the kafka producer failed, retrying")
            return False
        self._producer, self._replaced_after = producer, None
        KAFKA_CONNECTED.set(1)
        self._next_recheck = 0.0
        log.info("kafka producer connected")
        await self.missing_topics()
        return True

    async def _connect_until_done(self) -> None:
        """Connect, each attempt at least KAFKA_CONNECT_RETRY_S after the last one (replacements included), until a
        producer stays: one retired while this task still checked its topics had no other task to replace it."""
        while True:
            wait_s = self._last_connect_attempt + self._settings.kafka_connect_retry_s - time.monotonic()
            await asyncio.sleep(max(wait_s, 0.0))
            if await self._try_connect() and self._producer is not None:
                return

    async def missing_topics(self, ask_kafka: bool = False) -> frozenset[str]:
        """The topics Kafka's metadata said do not exist; asked for again when the last check is old enough.

        When Kafka did not answer the last check, no topic is missing: records for
        the unconfirmed ones fail with KafkaUnavailableError until Kafka answers.
        One check runs at a time, and concurrent callers wait for it (at most
        KAFKA_MAX_BLOCK_MS twice plus KAFKA_REQUEST_TIMEOUT_MS); a topic that
        became unconfirmed meanwhile is asked about at once in the next one.
        With ``ask_kafka`` (readiness), Kafka's metadata is asked even when every
        topic is confirmed (``_probe_kafka``), so that a broker that stopped answering shows.
        """
        self._unconfirm_unknown(self._topics)
        for _ in range(2):
            producer = self._producer
            idle = self._recheck is None or self._recheck.done()
            due = bool(self._unchecked_topics) or time.monotonic() >= self._next_recheck
            if producer is not None and self._unconfirmed_topics and idle and due:
                self._recheck = asyncio.create_task(self._check_topics(producer), name="kafka-topics")
            if self._recheck is not None and not self._recheck.done():
                await asyncio.shield(self._recheck)
            if not self._unchecked_topics:
                break
        if ask_kafka and self._producer is not None and not self._unconfirmed_topics:
            if self._probe is None or (self._probe.done() and time.monotonic() >= self._next_probe):
                self._probe = asyncio.create_task(self._probe_kafka(), name="kafka-probe")
            await asyncio.shield(self._probe)
        return frozenset() if self._unanswered else frozenset(self._unconfirmed_topics - self._unchecked_topics)

    async def _probe_kafka(self) -> None:
        """Ask Kafka's metadata about every topic, confirmed ones too (they need no asking to send records): the
        producer's cached metadata would not show a broker that stopped answering. At most every
        KAFKA_CONNECT_RETRY_S; a topic Kafka says is gone becomes unconfirmed."""
        try:
            absent = await asyncio.to_thread(absent_topics, self._settings, self._topics)
        except KafkaUnavailableError as error:
            log.warning("kafka did not answer the readiness check", extra={"error": str(error)})
            self._unanswered = error
        else:
            if absent:
                log.warning("topics missing in kafka", extra={"topics": sorted(absent)})
            self._unconfirmed_topics |= absent
            self._unanswered = None
        finally:
            self._next_probe = time.monotonic() + self._settings.kafka_connect_retry_s

    def _unconfirm_unknown(self, topics: Iterable[str]) -> None:
        """Make the topics whose partitions the current producer does not know unconfirmed, to be asked about."""
        producer = self._producer
        if producer is None:
            return
        unknown = {t for t in topics if t not in self._unconfirmed_topics and not _knows_partitions(producer, t)}
        if unknown:
            log.info("the producer knows no partitions of topics, asking kafka", extra={"topics": sorted(unknown)})
            self._unconfirmed_topics |= unknown
            self._unchecked_topics |= unknown

    async def _check_topics(self, producer: KafkaProducer) -> None:
        """Ask about the unconfirmed topics: the producer for their partitions, then Kafka's metadata for the rest."""
        topics = set(self._unconfirmed_topics)
        self._unchecked_topics -= topics
        known = await asyncio.gather(*(asyncio.to_thread(_has_metadata, producer, topic) for topic in sorted(topics)))
        with_partitions = {topic for topic, found in zip(sorted(topics), known, strict=True) if found}
        rest = topics - with_partitions
        try:
            absent = await asyncio.to_thread(absent_topics, self._settings, rest) if rest else set()
        except KafkaUnavailableError as error:
            log.warning(
                "kafka did not say whether topics exist, asking again later",
                extra={"topics": sorted(rest), "error": str(error)},
            )
            still_unconfirmed, self._unanswered = rest, error
        else:
            if absent:
                log.warning("topics missing in kafka", extra={"topics": sorted(absent)})
            still_unconfirmed, self._unanswered = absent, None
        self._unconfirmed_topics = (self._unconfirmed_topics - topics) | still_unconfirmed
        self._next_recheck = time.monotonic() + self._settings.kafka_connect_retry_s
        confirmed = topics - self._unconfirmed_topics
        if confirmed:
            log.info("topics exist in kafka", extra={"topics": sorted(confirmed)})

    async def send_many(self, records: Sequence[OutgoingRecord]) -> list[Outcome]:
        """Produce records; one outcome per record, in order (a Delivery when Kafka acknowledged it)."""
        topics = {record.topic for record in records}
        self._unconfirm_unknown(topics)
        if topics & self._unconfirmed_topics:
            await self.missing_topics()
        producer, unanswered = self._producer, self._unanswered
        unconfirmed, unchecked = frozenset(self._unconfirmed_topics), frozenset(self._unchecked_topics)
        if producer is None:
            return [KafkaUnavailableError("not connected to Kafka yet")] * len(records)
        loop = asyncio.get_running_loop()
        sent_at = time.monotonic()
        waiters: list[asyncio.Future[RecordMetadata]] = []
        stalled: dict[str, BaseException] = {}
        for record in records:
            if record.topic in unchecked:
                error = KafkaUnavailableError(f"Kafka did not say yet whether the topic {record.topic} exists")
                waiters.append(_failed(loop, error))
            elif record.topic in unconfirmed:
                waiters.append(_failed(loop, unanswered or TopicMissingError(record.topic)))
            elif record.topic in stalled:
                waiters.append(_failed(loop, stalled[record.topic]))
            else:
                waiter = await self._send(loop, producer, record)
                if _waited_in_vain(waiter):  # the batch's later records of the topic would each wait as long
                    stalled[record.topic] = KafkaUnavailableError(
                        f"Kafka gave no partitions of the topic {record.topic} within KAFKA_MAX_BLOCK_MS "
                        f"for an earlier record of this request: {waiter.exception()!r}"
                    )
                waiters.append(waiter)
        _, pending = await asyncio.wait(waiters, timeout=self._settings.ack_wait_s)
        for waiter in pending:
            waiter.cancel()
        if pending:
            self._unanswered_records(producer, sent_at)
        return [_outcome(waiter) for waiter in waiters]

    async def _send(
        self, loop: asyncio.AbstractEventLoop, producer: KafkaProducer, record: OutgoingRecord
    ) -> asyncio.Future[RecordMetadata]:
        """Hand one record to the producer: on the loop when it knows the topic's partitions, else from a thread."""
        try:
            if _knows_partitions(producer, record.topic):
                future = self._send_now(producer, record)
            else:  # metadata dropped since the topic was confirmed: sending waits for it
                future = await asyncio.to_thread(self._send_now, producer, record)
        except (KafkaError, ValueError) as error:
            # ValueError: kafka-python's partitioner found no metadata of the topic, which its I/O thread dropped
            # after send checked it (a topic deleted, a metadata refresh)
            log.warning("kafka refused a record", extra={"topic": record.topic, "error": repr(error)})
            if isinstance(error, KafkaTimeoutError | ValueError):  # no metadata: ask about the topic
                self._unconfirm_unknown([record.topic])
            return _failed(loop, error)
        return _bridge(
            future,
            loop,
            lambda error: self._blame(producer, error),
            lambda: self._acked(producer),
        )

    def _acked(self, producer: KafkaProducer) -> None:
        if producer is self._producer:
            self._last_ack = time.monotonic()

    def _unanswered_records(self, producer: KafkaProducer, sent_at: float) -> None:
        """Records sent at ``sent_at`` got no answer in time: replace the producer if it acknowledged none since."""
        if producer is self._producer and self._last_ack < sent_at and not self._stopping:
            error = KafkaTimeoutError(f"no acknowledgement nor error within {self._settings.ack_wait_s} s")
            self._retire(producer, error)

    def _blame(self, producer: KafkaProducer, error: BaseException) -> BaseException:
        """The error a record's failure stands for; the first one that leaves the producer unusable retires it."""
        if self._stopping or not _leaves_producer_unusable(error):
            return error
        if producer in self._retired:
            return KafkaUnavailableError(f"the Kafka producer is being replaced after an earlier error: {error!r}")
        self._retire(producer, error)
        return error

    def _retire(self, producer: KafkaProducer, error: BaseException) -> None:
        """Close a producer that sends nothing more, failing its pending records, and connect a new one."""
        log.error("kafka producer unusable, replacing it", extra={"error": repr(error)})
        self._retired.add(producer)
        if self._producer is producer:
            self._producer, self._replaced_after = None, repr(error)
            KAFKA_CONNECTED.set(0)
        closing = asyncio.create_task(asyncio.to_thread(close_producer, producer, 0), name="kafka-close-retired")
        self._closing.add(closing)
        closing.add_done_callback(self._closed)
        if self._connector is None or self._connector.done():
            self._connector = asyncio.create_task(self._connect_until_done(), name="kafka-connect")

    def _closed(self, closing: asyncio.Task[None]) -> None:
        """Forget a finished close of a retired producer; log how it failed, if it did (nobody awaits it)."""
        self._closing.discard(closing)
        error = None if closing.cancelled() else closing.exception()
        if error is not None:
            log.error("closing a retired kafka producer failed", exc_info=error)

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
        """Stop connecting, flush what is buffered (for at most KAFKA_DELIVERY_TIMEOUT_MS + 1 s) and close."""
        self._stopping = True
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._closing:
            await asyncio.wait(set(self._closing))  # their failures are logged by _closed
        for check in (self._recheck, self._probe):
            if check is not None:
                await asyncio.wait([check])  # its outcome went to the callers that awaited it
        if self._producer is not None:
            await asyncio.to_thread(close_producer, self._producer, self._settings.kafka_delivery_timeout_ms / 1000 + 1)
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
