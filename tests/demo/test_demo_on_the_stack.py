"""The demo's seeding and run lookups against the running local stack: isolated topics, and runs of Airflow's own.

The run lookups compare the REST client's answers with the metadata database itself, over runs the test creates:
it pauses the DAG, triggers runs of days of 2003 no other test uses (queued, never started while the DAG is paused),
then deletes them and gives the DAG back its paused state. Nothing here backfills.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

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
from tests.stack.test_orphan_backfills import _midnight, _runs_between


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


LOOKED_UP = 5
"""Days of the lookup: the runs of the whole days among them are this test's own."""
EMPTY = 2
"""The day among them (by position) that has no run of its whole day, only a run at noon, as a manual one."""


def _unused_days_of_2003(client: AirflowClient) -> list[date]:
    """``LOOKED_UP`` days in a row of 2003 that no run holds, at a random place (two runs of the suite apart)."""
    rng = random.Random(uuid.uuid4().int)
    while True:
        first = date(2003, 1, 1) + timedelta(days=rng.randrange(0, 365 - LOOKED_UP))
        days = [first + timedelta(days=offset) for offset in range(LOOKED_UP)]
        if not _runs_between(client, days[0], days[-1]):
            return days


@pytest.fixture
def own_runs(stack_env: dict[str, str], scratch_bucket: str) -> Iterator[tuple[list[date], dict[date, str]]]:
    """The looked-up days, and the run id of each day that has a run at its midnight: runs created through the REST
    API while the DAG is paused, so none starts; deleted afterwards, and the DAG's paused state given back."""
    client = AirflowClient.from_env(stack_env)
    client.wait_for_dag(DAG_ID)
    was_paused = client._call("GET", f"/dags/{DAG_ID}")["is_paused"]
    tag = f"test-lookup-{uuid.uuid4().hex[:8]}"
    days: list[date] = []
    try:
        client.pause(DAG_ID)  # a run triggered while the DAG is paused stays queued: no task of it runs
        days = _unused_days_of_2003(client)
        conf = {"lake_bucket": scratch_bucket}  # were a run to start, it would write to the scratch bucket
        at = {f"{tag}-{day}": _midnight(day) for i, day in enumerate(days) if i != EMPTY}
        at[f"{tag}-{days[EMPTY]}-noon"] = datetime.combine(days[EMPTY], time(12), UTC)  # not the day's run
        for run_id, logical in at.items():
            body = {"dag_run_id": run_id, "logical_date": logical.isoformat(), "conf": conf}
            client._call("POST", f"/dags/{DAG_ID}/dagRuns", json=body)
        yield days, {logical.date(): run_id for run_id, logical in at.items() if logical == _midnight(logical.date())}
    finally:
        try:  # every run of the tag, also one a timed-out request created; before the DAG may be unpaused
            for run in _runs_between(client, days[0], days[-1]) if days else []:
                if run["dag_run_id"].startswith(tag):
                    client._call("DELETE", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}")
        finally:
            (client.pause if was_paused else client.unpause)(DAG_ID)
            client.close()


def test_every_run_and_each_days_run_are_found_as_the_database_holds_them(own_runs, stack_env, monkeypatch):
    days, ours = own_runs
    monkeypatch.setattr(airflow_client, "PAGE", 2)  # the api-server's own paging, over several pages
    client = AirflowClient.from_env(stack_env)
    try:
        before = _runs_in_db()
        assert len(before) > 2 * airflow_client.PAGE  # this test's runs alone are over two pages
        listed = {r["dag_run_id"] for r in client.runs(DAG_ID)}
        by_day = client.runs_by_day(DAG_ID, days)  # the window holds the noon run of the day without one
        after = _runs_in_db()
    finally:
        client.close()

    assert {before[run_id] for run_id in ours.values()} == {_midnight(day) for day in ours}  # as created
    assert days[EMPTY] not in ours
    stayed = before.keys() & after.keys()  # other tests may add or delete runs meanwhile
    assert stayed <= listed <= before.keys() | after.keys()
    for day in days:
        holders = {run_id for run_id in stayed if before[run_id] == _midnight(day)}
        found = {by_day[day]["dag_run_id"]} if day in by_day else set()
        assert found == holders, day
    assert {day: run["dag_run_id"] for day, run in by_day.items()} == ours
    assert {(run["state"], run["start_date"]) for run in by_day.values()} == {("queued", None)}  # never started


def test_show_names_a_bucket_that_does_not_exist_and_needs_show_for_bucket(capsys) -> None:
    with pytest.raises(SystemExit, match=r"there is no bucket 'no-such-lake-7f1c' in the lake's S3"):
        demo_main(["--show", "2026-11-24", "--bucket", "no-such-lake-7f1c"])
    # a name S3 refuses (it was a ClientError traceback)
    with pytest.raises(
        SystemExit, match=r"the lake's S3 refused to read s3://Bad_Bucket/analytics/.*: InvalidBucketName"
    ):
        demo_main(["--show", "2026-11-24", "--bucket", "Bad_Bucket"])
    with pytest.raises(SystemExit) as refused:
        demo_main(["--bucket", "no-such-lake-7f1c"])
    assert refused.value.code == 2 and "--bucket goes with --show" in capsys.readouterr().err
