"""Create the platform's Kafka topics when missing: the `kafka-init` service of docker-compose.yaml.

Topics are ``<PINTEREST_TOPIC_PREFIX>.pin|geo|user`` with ``KAFKA_TOPIC_PARTITIONS`` partitions, replication 1 and
``retention.ms`` from ``KAFKA_TOPIC_RETENTION_MS`` (90 days by default, long enough for seeded history).
Existing topics are left as they are, so running it again changes nothing.
"""

from __future__ import annotations

import os
import sys

from include.records import ENTITIES
from include.settings import PlatformSettings
from include.topics import ensure_topics, retention_ms


def main() -> None:
    settings = PlatformSettings()
    try:
        retention = retention_ms(os.environ)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    wanted = [settings.topic(entity) for entity in ENTITIES]
    created = ensure_topics(
        settings.kafka_bootstrap_servers, wanted, settings.topic_partitions, retention, client_id="kafka-init"
    )
    for name in wanted:
        print(f"topic {name}: {'created' if name in created else 'exists'}", file=sys.stderr)


if __name__ == "__main__":
    main()
