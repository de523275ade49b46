"""The platform's Kafka topics: created when missing, by the local stack and by compose's ``kafka-init``."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence

from include.records import ENTITIES

DEFAULT_RETENTION_MS = 90 * 24 * 3600 * 1000  # long enough for seeded history and backfills of past days


def topic_name(prefix: str, entity: str) -> str:
    """The Kafka topic of an entity under a prefix, e.g. ``pinterest.pin``."""
    return f"{prefix}.{entity}"


KAFKA_TOPIC_MAX_LENGTH = 249
TOPIC_PREFIX_MAX_LENGTH = KAFKA_TOPIC_MAX_LENGTH - max(len(topic_name("", entity)) for entity in ENTITIES)
# the characters Kafka allows in a topic name; one line (JSON schema matches with re.search, whose $ also
# matches before a final newline)
TOPIC_PREFIX_PATTERN = r"^(?!.*\n)[a-zA-Z0-9._-]+$"


def check_topic_prefix(prefix: str, name: str = "PINTEREST_TOPIC_PREFIX") -> str:
    """``prefix`` when every ``<prefix>.<entity>`` is a topic name Kafka accepts, else ValueError naming ``name``."""
    if len(prefix) > TOPIC_PREFIX_MAX_LENGTH or not re.search(TOPIC_PREFIX_PATTERN, prefix):
        raise ValueError(
            f"{name} {prefix!r} is not a topic prefix: 1 to {TOPIC_PREFIX_MAX_LENGTH} of the characters Kafka allows "
            "in a topic name (a-z A-Z 0-9 . _ -)"
        )
    return prefix


def retention_ms(environ: Mapping[str, str]) -> int:
    """``KAFKA_TOPIC_RETENTION_MS`` in milliseconds (-1 keeps records forever); ValueError names a bad value."""
    text = environ.get("KAFKA_TOPIC_RETENTION_MS", str(DEFAULT_RETENTION_MS))
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"KAFKA_TOPIC_RETENTION_MS must be an integer number of milliseconds, got {text!r}") from None
    if value < -1 or value == 0:
        raise ValueError(f"KAFKA_TOPIC_RETENTION_MS must be positive or -1 (forever), got {value}")
    return value


def ensure_topics(
    bootstrap_servers: str, names: Sequence[str], partitions: int, retention: int, client_id: str = "pinterest-topics"
) -> list[str]:
    """Create those of ``names`` that do not exist (replication 1); returns the names this call created.

    Existing topics are left as they are, so calling it again changes nothing.
    """
    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id)
    try:
        existing = set(admin.list_topics())
        missing = [name for name in names if name not in existing]
        options = {"num_partitions": partitions, "replication_factor": 1, "configs": {"retention.ms": str(retention)}}
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently: the goal is reached
                admin.create_topics({name: options for name in missing}, wait_for_metadata=True)
        return missing
    finally:
        admin.close()
