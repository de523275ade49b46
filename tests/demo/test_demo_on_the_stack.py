"""The demo's seeding and run lookups against the running local stack: isolated topics, reads of Airflow only.

Nothing here triggers, backfills, pauses or unpauses: the Airflow checks compare the REST client's answers with
the metadata database itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer, TopicPartition

from demo.__main__ import main as demo_main
from devstack import airflow_client
from devstack.airflow_client import AirflowClient
from devstack.environment import airflow_env, platform_env
from include.backfill import DAG_ID
from include.emulator.__main__ import seed_with_progress
from include.records import ENTITIES
from include.settings import PlatformSettings


def test_the_seed_goes_to_the_stacks_kafka_whatever_the_shell_says(stack_env, kafka_topics, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("PINTEREST_TOPIC_PREFIX", "elsewhere")
    settings = PlatformSettings.model_validate({**stack_env, "PINTEREST_TOPIC_PREFIX": kafka_topics})
    first = datetime.now(UTC).date() - timedelta(days=2)

    seed_with_progress(settings, first, first + timedelta(days=1), per_day=7, seed=3)

    consumer = KafkaConsumer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    try:
        for entity in ENTITIES:
            topic = f"{kafka_topics}.{entity}"
            ends = consumer.end_offsets([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
            assert sum(ends.values()) == 2 * 7, topic
    finally:
        consumer.close()


def _runs_in_db() -> dict[str, datetime | None]:
    """Run id -> logical date (UTC) of the DAG's runs, read from Airflow's metadata database."""
    engine = sa.create_engine(airflow_env(platform_env())["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        with engine.connect() as db:
            rows = db.execute(sa.text("SELECT run_id, logical_date FROM dag_run WHERE dag_id = :d"), {"d": DAG_ID})
            return {run_id: _utc(logical) for run_id, logical in rows}
    finally:
        engine.dispose()


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def test_every_run_and_each_days_run_are_found_as_the_database_holds_them(stack_env, monkeypatch):
    monkeypatch.setattr(airflow_client, "PAGE", 2)  # the api-server's own paging, over several pages
    client = AirflowClient.from_env(stack_env)
    try:
        before = _runs_in_db()
        assert len(before) > 2 * airflow_client.PAGE
        midnights = sorted(
            {d for d in before.values() if d and d == d.replace(hour=0, minute=0, second=0, microsecond=0)}
        )
        # the suite's DAG tests (tests/dags, run before this) leave scheduled and backfill runs of whole days
        assert midnights, "no run of a whole day in Airflow's database to look up: run tests/dags first"
        days = [d.date() for d in midnights[-3:]] + [datetime.now(UTC).date() + timedelta(days=1)]  # the last: no run
        listed = {r["dag_run_id"] for r in client.runs(DAG_ID)}
        by_day = client.runs_by_day(DAG_ID, days)
        after = _runs_in_db()
    finally:
        client.close()

    stayed = before.keys() & after.keys()  # other tests may add or delete runs meanwhile
    assert stayed <= listed <= before.keys() | after.keys()
    for day in days:
        holders = {run_id for run_id in stayed if before[run_id] == datetime(day.year, day.month, day.day, tzinfo=UTC)}
        found = {by_day[day]["dag_run_id"]} if day in by_day else set()
        assert found == holders, day


def test_show_names_a_bucket_that_does_not_exist_and_needs_show_for_bucket(capsys) -> None:
    with pytest.raises(SystemExit, match=r"there is no bucket 'no-such-lake-7f1c' in the lake's S3"):
        demo_main(["--show", "2026-11-24", "--bucket", "no-such-lake-7f1c"])
    with pytest.raises(SystemExit) as refused:
        demo_main(["--bucket", "no-such-lake-7f1c"])
    assert refused.value.code == 2 and "--bucket goes with --show" in capsys.readouterr().err
