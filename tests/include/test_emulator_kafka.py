"""The emulator against the real stack: seeding Kafka by day, and posting to a running API."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime

from include.emulator import seed_kafka
from include.records import ENTITIES
from include.settings import PlatformSettings
from tests.api.kafka_helpers import read_all
from tests.api_process import REPO, RunningApi


def test_seed_kafka_writes_the_reported_counts_on_the_right_days(stack_env: dict[str, str], kafka_topics: str) -> None:
    settings = PlatformSettings(
        KAFKA_BOOTSTRAP_SERVERS=stack_env["KAFKA_BOOTSTRAP_SERVERS"], PINTEREST_TOPIC_PREFIX=kafka_topics
    )
    report = seed_kafka(date(2026, 11, 20), date(2026, 11, 22), 40, seed=9, settings=settings)

    found: dict[date, Counter[str]] = {}
    for entity in ENTITIES:
        for record in read_all(settings.kafka_bootstrap_servers, settings.topic(entity)):
            day = datetime.fromtimestamp(record.timestamp / 1000, UTC).date()
            found.setdefault(day, Counter())[entity] += 1
            assert json.loads(record.value)["index" if entity == "pin" else "ind"] >= 0
    assert {day: dict(counts) for day, counts in found.items()} == report.counts
    assert report.counts == {day: dict.fromkeys(ENTITIES, 40) for day in days(3)}
    assert report.total == 3 * 40 * 3


def days(n: int) -> list[date]:
    return [date(2026, 11, 20 + offset) for offset in range(n)]


def test_post_cli_posts_every_record_and_summarises(api: RunningApi) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "include.emulator", "post", "--url", api.url, "--count", "30", "--seed", "4"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "200: 90" in result.stdout
    stored = sum(len(read_all(api.bootstrap, api.topic(entity))) for entity in ENTITIES)
    assert stored == 90
