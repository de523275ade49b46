"""Reading one interval from Kafka: offsets by time per partition, then each partition's offset range.

Uses confluent-kafka (librdkafka) with manual assignment: no consumer group offsets are
committed, so a drain never moves anybody's position and can re-read any past range. The clients
get a whole librdkafka client config (a Kafka connection's extra: TLS, SASL, ...), except the
properties the drain's correctness rests on (OWNED_KEYS), which it sets itself.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, OffsetSpec

from include.drain.errors import (
    CompactedTopicError,
    KafkaConfigError,
    KafkaReadError,
    MissingTopicError,
    OpenTransactionError,
    TopicError,
)
from include.drain.kafka_log import LIBRDKAFKA_LOG

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
BATCH_SIZE = 5000  # messages per consume(): large enough to amortise the call, small enough to stay in cache


@dataclass(frozen=True)
class PartitionPlan:
    """The offsets one partition is read between, decided before reading starts."""

    partition: int
    log_start: int
    high_watermark: int
    read_from: int
    read_to: int
    late_from: int
    start_held: bool

    @property
    def empty(self) -> bool:
        return self.read_from >= self.read_to


ClientConfig = str | Mapping[str, Any]
"""Where and how the drain reaches Kafka: librdkafka client properties (a ``kafka`` connection's extra:
``bootstrap.servers`` and whatever the cluster needs, e.g. ``security.protocol``, ``sasl.*``, ``ssl.*``), or
bootstrap servers alone."""

CONSUMER_OWNED: dict[str, Any] = {
    "enable.auto.commit": False,  # nobody's group position moves
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,  # read_range sees where a partition ends
    "auto.offset.reset": "error",  # an offset gone is an error, never a silent jump elsewhere
    "isolation.level": "read_committed",  # no aborted record is drained; reading ends at the last stable offset
    "allow.auto.create.topics": False,  # a missing topic is reported (MissingTopicError), never created
}
"""What the drain's consumer is given whatever the client config says; ``group.id`` (a throwaway one per consumer)
and ``logger`` (LIBRDKAFKA_LOG) too."""
OWNED_KEYS = frozenset(CONSUMER_OWNED) | {"group.id", "logger"}

CONSUMER_DEFAULTS: dict[str, Any] = {
    "fetch.max.bytes": 16_777_216,
    "max.partition.fetch.bytes": 4_194_304,
    "queued.max.messages.kbytes": 16_384,
    "fetch.wait.max.ms": 50,
    "fetch.queue.backoff.ms": 5,
    "socket.timeout.ms": 30_000,
}
"""Fetch tuning (bounded prefetch) that the client config may change."""

_SECRET_WORDS = ("password", "passphrase", "secret", "private.key")
_SECRET_KEYS = frozenset({"ssl.key.pem", "sasl.oauthbearer.config"})


def client_config(client: ClientConfig) -> dict[str, Any]:
    """The client config as a new dict (a string: bootstrap servers alone); KafkaConfigError without a
    ``bootstrap.servers`` string."""
    config = {"bootstrap.servers": client} if isinstance(client, str) else dict(client)
    servers = config.get("bootstrap.servers")
    if not servers:
        raise KafkaConfigError("the Kafka client config has no 'bootstrap.servers'")
    if not isinstance(servers, str):
        kind = type(servers).__name__
        raise KafkaConfigError(f"the Kafka client config's 'bootstrap.servers' must be a string, not a {kind}")
    return config


def is_secret_key(name: str) -> bool:
    """Whether a client property holds a secret: its name says password, passphrase, secret or private key, or it is
    ``ssl.key.pem`` or ``sasl.oauthbearer.config``."""
    lowered = name.lower()
    return lowered in _SECRET_KEYS or any(word in lowered for word in _SECRET_WORDS)


def secret_values(client: ClientConfig) -> list[str]:
    """The values of the client config's secret properties (``is_secret_key``), to mask in logs."""
    if isinstance(client, str):
        return []
    return [str(value) for key, value in client.items() if is_secret_key(key) and value not in (None, "")]


def redact(text: str, client: ClientConfig) -> str:
    """``text`` with each secret value of the client config replaced by ``***``."""
    for secret in sorted(secret_values(client), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def overridden_keys(client: ClientConfig) -> list[str]:
    """The properties of the client config that the drain's consumer sets itself (OWNED_KEYS), sorted."""
    return [] if isinstance(client, str) else sorted(OWNED_KEYS.intersection(client))


def consumer_config(client: ClientConfig) -> dict[str, Any]:
    """The drain consumer's config: the fetch defaults, then the client config, then what the drain owns (manual
    assignment under a throwaway group id, no commits, read_committed, ...; OWNED_KEYS)."""
    return {
        **CONSUMER_DEFAULTS,
        **client_config(client),
        **CONSUMER_OWNED,
        "group.id": f"pinterest-drain-{uuid.uuid4().hex}",
        "logger": LIBRDKAFKA_LOG,
    }


def admin_config(client: ClientConfig) -> dict[str, Any]:
    """The admin client's config: the client config without the consumer's owned properties (an admin client would
    only warn that it ignores them), logging to LIBRDKAFKA_LOG."""
    config = {key: value for key, value in client_config(client).items() if key not in OWNED_KEYS}
    return {**config, "logger": LIBRDKAFKA_LOG}


def _refused(client: ClientConfig, exc: Exception) -> KafkaConfigError:
    """The KafkaConfigError of a client the library would not create, without the config's secrets."""
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    said = error.str() if isinstance(error, KafkaError) else str(exc)
    return KafkaConfigError(f"the Kafka client library refuses the client config: {redact(said, client)}")


def make_consumer(client: ClientConfig) -> Consumer:
    """A consumer for manual assignment (``consumer_config``), logging to LIBRDKAFKA_LOG (served by its consume
    calls); KafkaConfigError when the client library refuses the config."""
    config = consumer_config(client)
    if overridden := overridden_keys(client):
        log.warning("the drain sets %s itself: the Kafka client config's values are not used", ", ".join(overridden))
    try:
        return Consumer(config)
    except (KafkaException, TypeError, ValueError) as exc:  # TypeError: e.g. a callback given as a string
        raise _refused(client, exc) from None


def _offset_at(consumer: Consumer, topic: str, partition: int, timestamp_ms: int) -> int | None:
    """Earliest offset whose timestamp is >= ``timestamp_ms`` (before the epoch: the first), or None when no such
    record exists."""
    # Kafka refuses a negative timestamp (they mean "earliest" and "latest"); the epoch is before any record
    wanted = TopicPartition(topic, partition, max(0, timestamp_ms))
    try:
        [found] = consumer.offsets_for_times([wanted], timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaReadError(f"offsets_for_times failed on {topic}[{partition}]: {exc}") from exc
    if found.error is not None:
        raise KafkaReadError(f"offsets_for_times failed on {topic}[{partition}]: {found.error}")
    return found.offset if found.offset >= 0 else None


def refuse_compacted(configs: dict[str, str], topic: str) -> None:
    """CompactedTopicError when the topic's ``cleanup.policy`` includes ``compact``."""
    policy = configs.get("cleanup.policy", "delete")
    if "compact" in (part.strip() for part in policy.split(",")):
        raise CompactedTopicError(
            f"topic {topic!r} has cleanup.policy={policy}: compaction deletes records without moving the log start, "
            "so a drain cannot tell whether Kafka still holds a whole day (a rerun would drop records the lake "
            "holds); give the topic cleanup.policy=delete"
        )


def retention_floor_ms(configs: dict[str, str], now_ms: int) -> int | None:
    """Timestamp below which the topic's retention may have deleted records, when only time retention deletes.

    Time retention removes a segment once its newest record is older than ``retention.ms``, so
    nothing at or after ``now - retention.ms`` has been deleted by it. None when that cannot be
    relied on: size retention (``retention.bytes``), compaction, or no time limit at all (then
    only an administrator deleted records, anywhere).
    """
    retention = int(configs.get("retention.ms", "-1"))
    if retention < 0 or int(configs.get("retention.bytes", "-1")) >= 0 or configs.get("cleanup.policy") != "delete":
        return None
    return now_ms - retention


def make_admin(client: ClientConfig) -> AdminClient:
    """An admin client for the topic look-ups below (``admin_config``), logging to LIBRDKAFKA_LOG (served by
    ``poll``); KafkaConfigError when the client library refuses the config."""
    try:
        return AdminClient(admin_config(client))
    except (KafkaException, TypeError, ValueError) as exc:
        raise _refused(client, exc) from None


def topic_configs(admin: AdminClient, topic: str) -> dict[str, str]:
    """The topic's effective configuration (its own settings and the broker's defaults)."""
    [future] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
    try:
        entries = future.result(TIMEOUT_S)
    except (KafkaException, TimeoutError) as exc:  # TimeoutError: no answer within TIMEOUT_S
        raise TopicError(f"cannot read the configuration of topic {topic!r}: {exc}") from exc
    return {name: entry.value for name, entry in entries.items() if entry.value is not None}


def topic_id(admin: AdminClient, topic: str) -> str:
    """Kafka's id of the topic: a deleted and recreated topic of the same name gets a new one."""
    [future] = admin.describe_topics(TopicCollection([topic])).values()
    try:
        return str(future.result(TIMEOUT_S).topic_id)
    except (KafkaException, TimeoutError) as exc:
        raise TopicError(f"cannot describe topic {topic!r}: {exc}") from exc


def start_is_held(log_start: int, high: int, first_at_early: int | None, early_is_retained: bool = False) -> bool:
    """Whether Kafka still holds every record of the partition timestamped at or after the interval start.

    ``first_at_early`` is the first offset timestamped at or after the start minus the lateness
    grace. Held when nothing was ever deleted (log start 0), when time retention cannot have
    reached that early moment (``early_is_retained``), when a retained record older than it
    precedes that offset (records are out of order by at most the grace, so everything deleted
    lies before the interval), or when records are retained and all of them are that old.
    Otherwise records of the interval may be gone.
    """
    if log_start == 0 or early_is_retained:
        return True
    if first_at_early is None:
        return high > log_start
    return first_at_early > log_start


def _watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    """The partition's log start and the end of what this read_committed consumer can read: the high watermark, or
    the first offset of the oldest open transaction (the last stable offset)."""
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaReadError(f"cannot read the offsets of {topic}[{partition}]: {exc}") from exc


def await_open_transactions(admin: AdminClient, consumer: Consumer, topic: str, timeout_s: float) -> None:
    """Wait until every transaction open in the topic now has ended, so that reading up to the last stable offset
    reads every record written before this call.

    A read_committed consumer cannot read past an open transaction's first record until it ends, whoever wrote
    the records after it: planning now would silently cut the day short. Raises OpenTransactionError, naming each
    partition still held back after ``timeout_s`` (Kafka aborts a transaction after its producer's
    ``transaction.timeout.ms``). A missing topic is left to plan_partitions to report.
    """
    try:
        described = consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        partitions = sorted(described.partitions) if described is not None and described.error is None else []
        wanted = {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions}
        ends = admin.list_offsets(wanted, isolation_level=IsolationLevel.READ_UNCOMMITTED) if wanted else {}
        written = {tp.partition: future.result(TIMEOUT_S).offset for tp, future in ends.items()}
    except (KafkaException, TimeoutError) as exc:
        raise KafkaReadError(f"cannot read the high watermarks of topic {topic!r}: {exc}") from exc
    deadline = time.monotonic() + timeout_s
    while True:
        held = {p: (stable, end) for p, end in written.items() if (stable := _watermarks(consumer, topic, p)[1]) < end}
        if not held:
            return
        if time.monotonic() >= deadline:
            where = "; ".join(
                f"{topic}[{p}] from offset {stable} (written up to {end})" for p, (stable, end) in held.items()
            )
            raise OpenTransactionError(
                f"a transaction still open after {timeout_s:.0f}s of waiting holds back the records after it: {where}; "
                "a retry reads them once it has ended"
            )
        time.sleep(0.2)


def plan_partitions(
    consumer: Consumer, topic: str, start_ms: int, end_ms: int, grace_ms: int, floor_ms: int | None = None
) -> list[PartitionPlan]:
    """Per partition: read from the first offset at ``start_ms`` up to the high watermark seen now (the last stable
    offset: call await_open_transactions() first).

    Reading goes to the high watermark because a record of the interval may have been written
    after records of later days (history seeding, a slow producer). Offsets from the first record
    at ``end_ms + grace_ms`` on are ``late_from``: a record of the interval found there came later
    than the grace allows. ``floor_ms`` is the topic's ``retention_floor_ms``. The range is fixed
    before reading starts.
    """
    early_is_retained = floor_ms is not None and start_ms - grace_ms >= floor_ms
    try:
        metadata = consumer.list_topics(topic, timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise TopicError(f"cannot describe topic {topic!r}: {exc}") from exc
    described = metadata.topics.get(topic)
    error = described.error if described is not None else None
    if described is None or (error is not None and error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
        raise MissingTopicError(
            f"topic {topic!r} does not exist: create it, or give the run the topic_prefix of existing topics"
        )
    if error is not None or not described.partitions:
        raise TopicError(f"topic {topic!r} cannot be read: {error or 'it has no partitions'}")
    plans = []
    for partition in sorted(described.partitions):
        # high: the last stable offset (await_open_transactions() first, so no open transaction cuts it short)
        low, high = _watermarks(consumer, topic, partition)
        first_at_start = _offset_at(consumer, topic, partition, start_ms)
        first_late = _offset_at(consumer, topic, partition, end_ms + grace_ms)
        first_at_early = _offset_at(consumer, topic, partition, start_ms - grace_ms)
        read_from = max(low, first_at_start if first_at_start is not None else high)
        plans.append(
            PartitionPlan(
                partition=partition,
                log_start=low,
                high_watermark=high,
                read_from=read_from,
                read_to=max(read_from, high),
                late_from=max(read_from, first_late if first_late is not None else high),
                start_held=start_is_held(low, high, first_at_early, early_is_retained),
            )
        )
    return plans


def read_range(consumer: Consumer, topic: str, plan: PartitionPlan) -> Iterator[list[Message]]:
    """Batches of the partition's messages with offsets in ``[read_from, read_to)``, in offset order."""
    if plan.empty:
        return
    tp = TopicPartition(topic, plan.partition, plan.read_from)
    consumer.assign([tp])
    idle = 0.0
    next_offset = plan.read_from
    try:
        while True:
            # ask for no more than the range still holds: consume() waits for a full batch or the timeout
            messages = consumer.consume(min(BATCH_SIZE, plan.read_to - next_offset), timeout=1.0)
            batch = []
            done = False
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaReadError(f"reading {topic}[{plan.partition}] failed: {error}")
                if message.offset() >= plan.read_to:
                    done = True
                    break
                batch.append(message)
            if batch:
                idle = 0.0
                next_offset = batch[-1].offset() + 1
                yield batch
                done = done or batch[-1].offset() >= plan.read_to - 1
            if done:
                return
            if not messages:
                [position] = consumer.position([TopicPartition(topic, plan.partition)])
                if position.offset >= plan.read_to:
                    return  # the range ended on offsets with no records (transaction markers, compaction)
                idle += 1.0
                if idle >= TIMEOUT_S:
                    at = position.offset if position.offset >= 0 else next_offset  # negative: nothing fetched yet
                    raise KafkaReadError(
                        f"no progress reading {topic}[{plan.partition}] at offset {at} "
                        f"(want up to {plan.read_to}) for {TIMEOUT_S:.0f}s: is the broker reachable?"
                    )
    finally:
        consumer.unassign()
