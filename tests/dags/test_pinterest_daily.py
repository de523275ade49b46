"""`pinterest_daily` on the real scheduler of the local stack: a backfill and a REST-triggered run.

Each test seeds its own isolated topics (the emulator's historical mode) and passes
``topic_prefix``/``lake_bucket`` as run conf, so it touches nothing of other tests. The
expected counts are what Kafka acknowledged to the seeder, per day and entity.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from devstack import paths
from include import lake
from include.drain import Manifest
from include.emulator.seed import seed_kafka
from include.records import ENTITIES
from include.settings import PlatformSettings
from tests.waiting import DAY_END_TIMEOUT_S, clear_of_midnight_utc

DAG_ID = "pinterest_daily"
TERMINAL = {"success", "failed"}
PER_DAY = 40


@pytest.fixture(scope="module")
def airflow(stack_env: dict[str, str]) -> httpx.Client:
    """A REST client of the stack's api-server with a JWT, the DAG parsed and unpaused."""
    base = stack_env["AIRFLOW_API_URL"]
    token = httpx.post(
        f"{base}/auth/token",
        json={"username": stack_env["AIRFLOW_USERNAME"], "password": stack_env["AIRFLOW_PASSWORD"]},
        timeout=30,
    )
    token.raise_for_status()
    client = httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=30
    )
    deadline = time.monotonic() + 120
    while client.get(f"/api/v2/dags/{DAG_ID}").status_code == 404:  # the dag-processor may not have parsed it yet
        assert time.monotonic() < deadline, f"{DAG_ID} never appeared in Airflow"
        time.sleep(2)
    client.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
    return client


def wait_for_runs(airflow: httpx.Client, run_ids: list[str], timeout_s: float = 420) -> dict[str, dict]:
    """Poll until every run ended; return them by id."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = {r: airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{r}").json() for r in run_ids}
        if all(run["state"] in TERMINAL for run in runs.values()):
            return runs
        assert time.monotonic() < deadline, {r: run["state"] for r, run in runs.items()}
        time.sleep(3)


def task_states(airflow: httpx.Client, run_id: str) -> dict[str, str]:
    reply = airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()
    return {ti["task_id"]: ti["state"] for ti in reply["task_instances"]}


def manifest(s3, bucket: str, entity: str, day: date) -> Manifest:
    return Manifest.model_validate_json(s3.get_object(Bucket=bucket, Key=lake.manifest_key(entity, day))["Body"].read())


def unused_days(airflow: httpx.Client, count: int) -> list[date]:
    """Consecutive past days of 2026 (after the DAG's start date) that no run of the DAG has drained yet.

    The day after them is free too, so a run whose logical date is the end of the last day can be created.
    """
    runs = airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 1000}).json()["dag_runs"]
    taken = {datetime.fromisoformat(r[k]).date() for r in runs for k in ("data_interval_start", "logical_date") if r[k]}
    rng = random.Random(uuid.uuid4().int)
    while True:
        first = date(2026, 1, 2) + timedelta(days=rng.randrange(0, 300))
        days = [first + timedelta(days=i) for i in range(count)]
        if not taken & {*days, days[-1] + timedelta(days=1)}:
            return days


def test_backfill_of_three_days_gives_three_complete_partitions(airflow, s3, scratch_bucket, kafka_topics):
    days = unused_days(airflow, 3)
    seeded = seed_kafka(days[0], days[-1], PER_DAY, seed=7, settings=PlatformSettings(topic_prefix=kafka_topics))
    conf = json.dumps({"topic_prefix": kafka_topics, "lake_bucket": scratch_bucket})

    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "devstack",
            "airflow",
            "backfill",
            "create",
            "--dag-id",
            DAG_ID,
            "--from-date",
            days[0].isoformat(),
            "--to-date",
            days[-1].isoformat(),
            "--dag-run-conf",
            conf,
            "--reprocess-behavior",
            "completed",
            "--max-active-runs",
            "1",  # day by day: the analytics of a day read the clean partitions of the days before it
        ],
        cwd=paths.REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]

    # the runs with these days' logical dates (queued runs have no start date yet, so no ordering by it)
    window = {"logical_date_gte": f"{days[0]}T00:00:00Z", "logical_date_lte": f"{days[-1]}T00:00:00Z"}
    runs = airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params={"run_type": "backfill", **window}).json()["dag_runs"]
    ours = [r for r in runs if r.get("conf") == json.loads(conf)]
    assert len(ours) == 3, [(r["dag_run_id"], r.get("conf")) for r in runs[:10]]
    ended = wait_for_runs(airflow, [r["dag_run_id"] for r in ours], timeout_s=720)
    assert {r["state"] for r in ended.values()} == {"success"}, {r: task_states(airflow, r) for r in ended}
    drained_days = sorted(datetime.fromisoformat(r["data_interval_start"]).date() for r in ended.values())
    assert drained_days == days
    for day in days:
        for entity in ENTITIES:
            found = manifest(s3, scratch_bucket, entity, day)
            assert (found.status, found.record_count) == ("complete", seeded.counts[day][entity]), (day, entity)
            assert s3.head_object(Bucket=scratch_bucket, Key=lake.success_key(entity, day))
            assert json.loads(s3.get_object(Bucket=scratch_bucket, Key=lake.dq_key(entity, day))["Body"].read())[
                "passed"
            ]


@pytest.mark.timeout(DAY_END_TIMEOUT_S)
def test_runs_triggered_through_the_rest_api(airflow, s3, scratch_bucket, kafka_topics):
    [day] = unused_days(airflow, 1)
    seeded = seed_kafka(day, day, PER_DAY, seed=11, settings=PlatformSettings(topic_prefix=kafka_topics))
    conf = {"topic_prefix": kafka_topics, "lake_bucket": scratch_bucket}
    logical = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)  # drains the day before it
    with_date = airflow.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"dag_run_id": f"test-rest-{uuid.uuid4().hex[:8]}", "logical_date": logical.isoformat(), "conf": conf},
    )
    without_date = airflow.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"dag_run_id": f"test-nodate-{uuid.uuid4().hex[:8]}", "logical_date": None, "conf": conf},
    )
    # today's midnight: the logical date of today's scheduled run, which the scheduler would skip if this one held it;
    # its task refuses it only while that midnight is still today's (a later midnight would never be scheduled)
    clear_of_midnight_utc()
    slot = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)
    for run in airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 1000}).json()["dag_runs"]:
        if run["dag_run_id"].startswith("test-slot-"):  # left by an interrupted earlier test run
            airflow.delete(f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}")
    on_a_slot = airflow.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"dag_run_id": f"test-slot-{uuid.uuid4().hex[:8]}", "logical_date": slot.isoformat(), "conf": conf},
    )
    misspelt = airflow.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"dag_run_id": f"test-conf-{uuid.uuid4().hex[:8]}", "logical_date": datetime.now(UTC).isoformat(),
              "conf": {**conf, "lake_buket": "elsewhere"}},
    )  # fmt: skip
    assert with_date.status_code == 200, with_date.text
    assert without_date.status_code == 200, without_date.text
    assert on_a_slot.status_code == 200, on_a_slot.text
    assert misspelt.status_code == 200, misspelt.text
    run_ids = [r.json()["dag_run_id"] for r in (with_date, without_date, on_a_slot, misspelt)]

    try:
        ended = wait_for_runs(airflow, run_ids)
        refused_log, misspelt_log = (
            airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/wait_for_late_records/logs/1").text
            for run_id in run_ids[2:]
        )
    finally:
        airflow.delete(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_ids[2]}")  # gives the slot back to the scheduler

    good = ended[with_date.json()["dag_run_id"]]
    assert good["state"] == "success", task_states(airflow, good["dag_run_id"])
    assert datetime.fromisoformat(good["data_interval_start"]).date() == day
    for entity in ENTITIES:
        assert manifest(s3, scratch_bucket, entity, day).record_count == seeded.counts[day][entity]
    # the run wrote to the scratch bucket: its events name that bucket's Assets, not the default bucket's
    events = airflow.get("/api/v2/assets/events", params={"source_dag_id": DAG_ID, "source_run_id": good["dag_run_id"]})
    extras = {e["uri"]: e["extra"] for e in events.json()["asset_events"]}
    lake = f"s3://{scratch_bucket}"
    assert {u: x for u, x in extras.items() if not u.startswith(f"{lake}/raw/")} == {
        **{f"{lake}/clean/{entity}": {"dt": day.isoformat(), "bucket": scratch_bucket} for entity in ENTITIES},
        f"{lake}/analytics": {"dt": day.isoformat(), "bucket": scratch_bucket},
    }
    assert {u: x for u, x in extras.items() if u.startswith(f"{lake}/raw/")} == {
        f"{lake}/raw/{entity}": {"dt": day.isoformat(), "bucket": scratch_bucket, "status": "complete",
                                 "records": seeded.counts[day][entity], "outcome": "drained"}
        for entity in ENTITIES
    }  # fmt: skip
    bad = ended[without_date.json()["dag_run_id"]]
    assert bad["state"] == "failed"
    states = task_states(airflow, bad["dag_run_id"])
    assert states["wait_for_late_records"] == "failed", states
    log = airflow.get(
        f"/api/v2/dags/{DAG_ID}/dagRuns/{bad['dag_run_id']}/taskInstances/wait_for_late_records/logs/1",
    )
    assert "no data interval" in log.text, log.text[-2000:]

    assert ended[run_ids[2]]["state"] == "failed"
    assert f"is the logical date of the scheduled run of {slot.date()}" in refused_log, refused_log[-2000:]
    assert ended[run_ids[3]]["state"] == "failed"
    assert "unknown run conf keys ['lake_buket']" in misspelt_log, misspelt_log[-2000:]
