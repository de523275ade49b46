"""Write generated triples straight into Kafka with record timestamps spread over past UTC days."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError

from include.days import days_between, midnight_ms
from include.drain.errors import TopicError
from include.drain.kafka_reader import make_admin, topic_configs
from include.emulator.generate import generate_triples
from include.records import ENTITIES, Entity, kafka_key, kafka_value
from include.settings import PlatformSettings

DAY_MS = 86_400_000
FIRST_DAY = date(1970, 1, 1)
"""The first day a Kafka record timestamp (epoch milliseconds, not negative) can fall on."""
CHECK_TIMEOUT_MS = 5_000
"""How long the check before seeding waits for Kafka to answer."""


class SeedError(RuntimeError):
    """Kafka cannot take the seeded records (not answering, topics missing) or did not acknowledge them all."""


@dataclass
class SeedReport:
    """Records Kafka acknowledged, per UTC day of their record timestamp and per entity; ``interrupted`` when
    seeding stopped early (``should_stop``), so the counts cover only the records sent until then."""

    counts: dict[date, dict[Entity, int]] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def total(self) -> int:
        return sum(sum(per_entity.values()) for per_entity in self.counts.values())


def check_kafka(settings: PlatformSettings) -> None:
    """Raise SeedError unless Kafka answers within CHECK_TIMEOUT_MS and has the three entity topics."""
    servers = settings.kafka_bootstrap_servers
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=servers.split(","),
            client_id="pinterest-emulator-check",
            bootstrap_timeout_ms=CHECK_TIMEOUT_MS,
            request_timeout_ms=CHECK_TIMEOUT_MS,
        )
        try:
            existing = set(admin.list_topics())
        finally:
            admin.close()
    except (KafkaError, OSError) as error:
        message = f"Kafka does not answer at {servers} ({error}); start the local stack with `make up`"
        raise SeedError(message) from error
    missing = [settings.topic(entity) for entity in ENTITIES if settings.topic(entity) not in existing]
    if missing:
        raise SeedError(
            f"topics missing in Kafka at {servers}: {', '.join(missing)} "
            "(check PINTEREST_TOPIC_PREFIX or --topic-prefix; `make up` creates the default ones)"
        )


def retention_refusal(topic: str, configs: Mapping[str, str], first_day: date, now_ms: int) -> str | None:
    """Why ``topic`` would not keep records of ``first_day``, else None (``configs``: its effective configuration).

    Kafka's time retention deletes records by their timestamp: a day older than ``retention.ms`` is gone at the
    broker's next retention check (within minutes), and its drain then finds it expired.
    """
    retention = int(configs.get("retention.ms", "-1"))
    if retention < 0 or midnight_ms(first_day) >= now_ms - retention:
        return None
    oldest = datetime.fromtimestamp((now_ms - retention) / 1000, UTC).date() + timedelta(days=1)
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    instead = f"seed from {oldest} on, or raise" if oldest < today else "no past day can be seeded: raise"
    return (
        f"topic {topic} keeps records for retention.ms={retention} ({retention / DAY_MS:g} days), so Kafka may "
        f"delete the records of {first_day} within minutes: {instead} the topic's retention.ms "
        "(-1 keeps records forever; KAFKA_TOPIC_RETENTION_MS sets it for the topics `make up` creates)"
    )


def timestamp_refusal(topic: str, configs: Mapping[str, str]) -> str | None:
    """Why ``topic`` would not keep the seeded records' timestamps, else None: with ``LogAppendTime`` the broker
    stamps each record with the time it arrives, so every seeded day would land on today."""
    if configs.get("message.timestamp.type") != "LogAppendTime":
        return None
    return (
        f"topic {topic} has message.timestamp.type=LogAppendTime: Kafka would replace the seeded records' past "
        "timestamps with today's, and the days seeded would be empty; seed topics with CreateTime (Kafka's default)"
    )


def check_retention(settings: PlatformSettings, first_day: date) -> None:
    """Raise SeedError when a topic would not keep the seeded records of ``first_day`` as seeded: its time retention
    would delete them (retention_refusal), or it stamps records itself (timestamp_refusal)."""
    admin = make_admin(settings.kafka_bootstrap_servers)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    for entity in ENTITIES:
        topic = settings.topic(entity)
        try:
            configs = topic_configs(admin, topic)
        except TopicError as error:
            raise SeedError(str(error)) from error
        if refusal := timestamp_refusal(topic, configs) or retention_refusal(topic, configs, first_day, now_ms):
            raise SeedError(refusal)


def day_timestamps_ms(day: date, count: int, rng: random.Random) -> list[int]:
    """``count`` increasing epoch-millisecond timestamps spread over the UTC ``day`` (one per equal slot)."""
    start_ms = midnight_ms(day)
    slot = DAY_MS / count
    # the last slot's product can round up to DAY_MS itself (a draw within 2**-53 of 1): the next day's midnight
    return [start_ms + min(int((index + rng.random()) * slot), DAY_MS - 1) for index in range(count)]


def seed_kafka(
    first_day: date,
    last_day: date,
    per_day: int,
    *,
    seed: int = 0,
    settings: PlatformSettings | None = None,
    on_sent: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SeedReport:
    """Produce ``per_day`` triples (a pin, a geo and a user record each) for every day of ``[first_day, last_day]``.

    Each triple's records carry a record timestamp inside its day. Returns the exact
    acknowledged counts; raises SeedError (a RuntimeError) when Kafka does not answer,
    a topic is missing or would delete the first day at once (time retention), or Kafka did not acknowledge
    every record. Once ``should_stop()`` is true no further triple is sent: what was sent is flushed and the
    report says ``interrupted``.
    """
    if per_day < 1:
        raise ValueError(f"per_day must be at least 1, got {per_day}")
    today = datetime.now(UTC).date()
    if last_day >= today:
        raise ValueError(f"seed-kafka writes past days only: the last day {last_day} is not before today ({today} UTC)")
    if first_day < FIRST_DAY:
        raise ValueError(f"the first day {first_day} is before {FIRST_DAY}: Kafka record timestamps start there")
    days = days_between(first_day, last_day)
    settings = settings or PlatformSettings()
    check_kafka(settings)
    check_retention(settings, first_day)
    rng = random.Random(f"timestamps-{seed}")
    triples = generate_triples(seed)
    report = SeedReport({day: dict.fromkeys(ENTITIES, 0) for day in days})
    failures: list[BaseException] = []
    lock = threading.Lock()

    def acknowledged(day: date, entity: Entity) -> Callable[[object], None]:
        def count(_metadata: object) -> None:
            with lock:
                report.counts[day][entity] += 1

        return count

    def failed(error: BaseException) -> None:
        with lock:
            failures.append(error)

    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        client_id="pinterest-emulator-seed",
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=256 * 1024,
    )
    try:
        for day in days:
            for timestamp_ms in day_timestamps_ms(day, per_day, rng):
                if should_stop is not None and should_stop():
                    report.interrupted = True
                    break
                triple = next(triples)
                for entity in ENTITIES:
                    record = triple.record(entity)
                    future = producer.send(
                        settings.topic(entity),
                        key=kafka_key(entity, record),
                        value=kafka_value(record),
                        timestamp_ms=timestamp_ms,
                        headers=[("source", b"emulator-seed")],
                    )
                    future.add_callback(acknowledged(day, entity))
                    future.add_errback(failed)
                if on_sent is not None:
                    on_sent(len(ENTITIES))
            if report.interrupted:
                break
        producer.flush()
    except KafkaError as error:  # Kafka went away mid-seed
        failure: KafkaError | None = error
    else:
        failure = None
    finally:
        producer.close()  # delivers what is in flight, or gives up on it: the count below is final
    if failure is not None:
        with lock:
            acknowledged_total = report.total
        raise SeedError(
            f"Kafka at {settings.kafka_bootstrap_servers} failed while seeding ({failure!r}); "
            f"{acknowledged_total} records were acknowledged"
        ) from failure
    if failures:
        raise SeedError(f"Kafka did not acknowledge {len(failures)} seeded records; first error: {failures[0]!r}")
    return report
