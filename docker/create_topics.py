"""Create the platform's Kafka topics when missing: the `kafka-init` service of docker-compose.yaml.

Topics are ``<PINTEREST_TOPIC_PREFIX>.pin|geo|user`` with ``KAFKA_TOPIC_PARTITIONS`` partitions, replication 1 and
``retention.ms`` from ``KAFKA_TOPIC_RETENTION_MS`` (90 days by default, long enough for seeded history).
Existing topics are left as they are, so running it again changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from include.records import ENTITIES
from include.settings import PlatformSettings

DEFAULT_RETENTION_MS = 90 * 24 * 3600 * 1000


def retention_ms(environ: dict[str, str]) -> int:
    """``KAFKA_TOPIC_RETENTION_MS`` as milliseconds (-1 keeps records forever)."""
    text = environ.get("KAFKA_TOPIC_RETENTION_MS", str(DEFAULT_RETENTION_MS))
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"KAFKA_TOPIC_RETENTION_MS must be an integer number of milliseconds, got {text!r}") from None
    if value < -1 or value == 0:
        raise SystemExit(f"KAFKA_TOPIC_RETENTION_MS must be positive or -1 (forever), got {value}")
    return value


def main() -> None:
    settings = PlatformSettings()
    retention = retention_ms(dict(os.environ))
    wanted = [settings.topic(entity) for entity in ENTITIES]
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="kafka-init")
    try:
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        options = {
            "num_partitions": settings.topic_partitions,
            "replication_factor": 1,
            "configs": {"retention.ms": str(retention)},
        }
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently: the goal is reached
                admin.create_topics({name: options for name in missing}, wait_for_metadata=True)
        for name in wanted:
            print(f"topic {name}: {'created' if name in missing else 'exists'}", file=sys.stderr)
    finally:
        admin.close()


if __name__ == "__main__":
    main()
