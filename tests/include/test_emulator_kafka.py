"""The emulator against the real stack: seeding Kafka by day, and posting to a running API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from include.emulator import SeedError, seed_kafka
from include.emulator.__main__ import main as emulator_main
from include.records import ENTITIES
from include.settings import PlatformSettings
from tests.api.kafka_helpers import read_all
from tests.api_process import REPO, RunningApi, free_port
from tests.conftest import isolated_topics


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


def emulator(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the emulator CLI; its result and how long it took."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "include.emulator", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, time.monotonic() - started


PROMPTLY_S = 30
"""A failure is reported within this (a cold interpreter included); kafka-python's own default wait is 60 s."""
SEED_ARGS = ("seed-kafka", "--per-day", "5", "--from", "2026-11-20", "--to", "2026-11-21")


def one_line(stderr: str) -> str:
    """The only line of ``stderr`` (fails when there is a traceback or more)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_seed_kafka_names_the_missing_topics_at_once(stack_env: dict[str, str]) -> None:
    prefix = f"test-absent-{uuid.uuid4().hex[:10]}"
    result, took_s = emulator(*SEED_ARGS, "--topic-prefix", prefix)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert all(f"{prefix}.{entity}" in line for entity in ENTITIES), line
    assert took_s < PROMPTLY_S


def test_a_failed_seed_stops_a_python_caller_such_as_the_demo(stack_env: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        emulator_main([*SEED_ARGS, "--topic-prefix", f"test-absent-{uuid.uuid4().hex[:10]}"])
    assert stopped.value.code == 1


def test_seed_kafka_names_the_servers_when_kafka_does_not_answer() -> None:
    servers = f"127.0.0.1:{free_port()}"
    result, took_s = emulator(*SEED_ARGS, env={"KAFKA_BOOTSTRAP_SERVERS": servers})
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"Kafka does not answer at {servers}" in line
    assert "make up" in line
    assert took_s < PROMPTLY_S


def test_seed_kafka_raises_seed_error_naming_a_missing_topic(stack_env: dict[str, str]) -> None:
    settings = PlatformSettings(
        KAFKA_BOOTSTRAP_SERVERS=stack_env["KAFKA_BOOTSTRAP_SERVERS"], PINTEREST_TOPIC_PREFIX="test-absent-lib"
    )
    with pytest.raises(SeedError, match=r"test-absent-lib\.pin, test-absent-lib\.geo, test-absent-lib\.user"):
        seed_kafka(date(2026, 11, 20), date(2026, 11, 20), 1, settings=settings)


def test_seed_kafka_refuses_a_day_the_topics_retention_would_delete(stack_env: dict[str, str]) -> None:
    """Kafka deletes records by their timestamp: a day older than retention.ms would vanish within minutes."""
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    two_days_ms = 2 * 86_400_000
    with isolated_topics(bootstrap, f"test-retention-{uuid.uuid4().hex[:8]}", retention_ms=two_days_ms) as prefix:
        settings = PlatformSettings(KAFKA_BOOTSTRAP_SERVERS=bootstrap, PINTEREST_TOPIC_PREFIX=prefix)
        today = datetime.now(UTC).date()
        old_day = today - timedelta(days=5)
        with pytest.raises(SeedError) as refused:
            seed_kafka(old_day, today - timedelta(days=1), 2, settings=settings)
        message = str(refused.value)
        assert f"topic {prefix}.pin keeps records for retention.ms={two_days_ms} (2 days)" in message
        assert f"the records of {old_day}" in message
        assert f"seed from {today - timedelta(days=1)} on" in message
        assert sum(len(read_all(bootstrap, f"{prefix}.{entity}")) for entity in ENTITIES) == 0  # nothing written

        yesterday = today - timedelta(days=1)
        report = seed_kafka(yesterday, yesterday, 2, settings=settings)  # within the retention: seeded
        assert report.counts == {yesterday: dict.fromkeys(ENTITIES, 2)}


def test_post_names_the_url_when_no_api_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result, took_s = emulator("post", "--url", url, "--count", "1")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"the API does not answer at {url}" in line
    assert "make up" in line
    assert took_s < PROMPTLY_S
