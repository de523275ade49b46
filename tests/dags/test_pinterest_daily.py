"""`pinterest_daily` on the real scheduler of the local stack: a backfill, REST-triggered runs, refused params.

Each test seeds its own isolated topics (the emulator's historical mode) and passes
``topic_prefix``/``lake_bucket`` as run conf, so it touches nothing of other tests. The
expected counts are what Kafka acknowledged to the seeder, per day and entity.
"""

from __future__ import annotations

import json
import random
import shlex
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from devstack import paths
from devstack.airflow_client import AirflowClient
from include import lake
from include.backfill import ANALYTICS_TASK_ID, clear_analytics_command
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


def try_numbers(airflow: httpx.Client, run_id: str) -> dict[str, int]:
    reply = airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()
    return {f"{ti['task_id']}[{ti['map_index']}]": ti["try_number"] for ti in reply["task_instances"]}


def publication(s3, bucket: str, day: date) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=lake.publication_key(day))["Body"].read())


def manifest(s3, bucket: str, entity: str, day: date) -> Manifest:
    return Manifest.model_validate_json(s3.get_object(Bucket=bucket, Key=lake.manifest_key(entity, day))["Body"].read())


def all_runs(stack_env: dict[str, str]) -> list[dict]:
    """Every run of the DAG (the project's client reads page after page: one answer holds at most 100)."""
    return AirflowClient.from_env(stack_env).runs(DAG_ID)


def unused_days(stack_env: dict[str, str], count: int) -> list[date]:
    """Consecutive past days of 2026 that no run of the DAG has drained yet.

    The day after them is free too, so a run whose logical date is the end of the last day can be created.
    """
    runs = all_runs(stack_env)
    taken = {datetime.fromisoformat(r[k]).date() for r in runs for k in ("data_interval_start", "logical_date") if r[k]}
    rng = random.Random(uuid.uuid4().int)
    while True:
        first = date(2026, 1, 2) + timedelta(days=rng.randrange(0, 300))
        days = [first + timedelta(days=i) for i in range(count)]
        if not taken & {*days, days[-1] + timedelta(days=1)}:
            return days


def test_backfill_of_three_days_gives_three_complete_partitions(airflow, stack_env, s3, scratch_bucket, kafka_topics):
    days = unused_days(stack_env, 3)
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
    by_day = {datetime.fromisoformat(r["data_interval_start"]).date(): r["dag_run_id"] for r in ended.values()}
    published = {day: publication(s3, scratch_bucket, day) for day in days}
    for day in days:
        assert (published[day]["run_id"], published[day]["raw_status"]) == (by_day[day], "complete")
        assert len(published[day]["results"]) == 9

    # the command the analytics job prints for later days computed from data changed since: only their analytics run
    tries = {day: try_numbers(airflow, by_day[day]) for day in days}
    cleared = subprocess.run(
        [sys.executable, "-m", "devstack", *shlex.split(clear_analytics_command(days[1], days[2])), "--yes"],
        cwd=paths.REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert cleared.returncode == 0, cleared.stdout[-2000:] + cleared.stderr[-2000:]
    again = wait_for_runs(airflow, list(by_day.values()), timeout_s=420)
    assert {r["state"] for r in again.values()} == {"success"}, {r: task_states(airflow, r) for r in again}
    for day in days:
        rerun = {f"{ANALYTICS_TASK_ID}[-1]"} if day in days[1:] else set()
        expected = {task: n + (task in rerun) for task, n in tries[day].items()}
        assert try_numbers(airflow, by_day[day]) == expected, day
        newer = publication(s3, scratch_bucket, day)["published_at"] > published[day]["published_at"]
        assert newer == (day in days[1:]), day


@pytest.mark.timeout(DAY_END_TIMEOUT_S)
def test_runs_triggered_through_the_rest_api(airflow, stack_env, s3, scratch_bucket, kafka_topics):
    [day] = unused_days(stack_env, 1)
    seeded = seed_kafka(day, day, PER_DAY, seed=11, settings=PlatformSettings(topic_prefix=kafka_topics))
    conf = {"topic_prefix": kafka_topics, "lake_bucket": scratch_bucket}
    start = datetime.combine(day, datetime.min.time(), UTC)
    with_date = airflow.post(  # the day as the interval, "now" as the logical date (docs/drain.md)
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"dag_run_id": f"test-rest-{uuid.uuid4().hex[:8]}", "logical_date": datetime.now(UTC).isoformat(),
              "data_interval_start": start.isoformat(), "data_interval_end": (start + timedelta(days=1)).isoformat(),
              "conf": conf},
    )  # fmt: skip
    # the next midnight, of a past day: Airflow gives the run the interval of the day before it, so it would hold that
    # day's logical date while draining another, and a backfill of that day would reuse it, interval and all
    past_midnight = airflow.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"dag_run_id": f"test-midnight-{uuid.uuid4().hex[:8]}",
              "logical_date": (start + timedelta(days=1)).isoformat(), "conf": {**conf, "min_records": 7}},
    )  # fmt: skip
    without_date = airflow.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"dag_run_id": f"test-nodate-{uuid.uuid4().hex[:8]}", "logical_date": None, "conf": conf},
    )
    # today's midnight: the logical date of today's scheduled run, which the scheduler would skip if this one held it;
    # its task refuses it (as any midnight other than the run's interval start); waiting out the day's last minutes
    # keeps the run's inferred interval and the slot on the same sides of midnight
    clear_of_midnight_utc()
    slot = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)
    for run in all_runs(stack_env):
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
    assert past_midnight.status_code == 200, past_midnight.text
    assert datetime.fromisoformat(past_midnight.json()["data_interval_start"]) == start  # as Airflow infers it
    run_ids = [r.json()["dag_run_id"] for r in (with_date, without_date, on_a_slot, misspelt, past_midnight)]

    try:
        ended = wait_for_runs(airflow, run_ids)
        refused_log, misspelt_log, past_midnight_log = (
            airflow.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/wait_for_late_records/logs/1").text
            for run_id in run_ids[2:]
        )
        past_midnight_states = task_states(airflow, run_ids[4])
    finally:
        for run_id in (run_ids[2], run_ids[4]):  # give the slots back to the scheduler
            airflow.delete(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")

    good = ended[with_date.json()["dag_run_id"]]
    assert good["state"] == "success", task_states(airflow, good["dag_run_id"])
    assert datetime.fromisoformat(good["data_interval_start"]).date() == day
    for entity in ENTITIES:
        assert manifest(s3, scratch_bucket, entity, day).record_count == seeded.counts[day][entity]
    # the run wrote to the scratch bucket: its events name that bucket's Assets, not the default bucket's
    events = airflow.get("/api/v2/assets/events", params={"source_dag_id": DAG_ID, "source_run_id": good["dag_run_id"]})
    extras = {e["uri"]: e["extra"] for e in events.json()["asset_events"]}
    emitters = {e["uri"]: e["source_task_id"] for e in events.json()["asset_events"]}
    lake = f"s3://{scratch_bucket}"
    complete = {"dt": day.isoformat(), "bucket": scratch_bucket, "status": "complete"}  # the day was drained after it
    assert {u: x for u, x in extras.items() if not u.startswith(f"{lake}/raw/")} == {
        **{f"{lake}/clean/{entity}": complete for entity in ENTITIES},
        f"{lake}/analytics": complete,
    }
    assert {u: x for u, x in extras.items() if u.startswith(f"{lake}/raw/")} == {
        f"{lake}/raw/{entity}": {**complete, "records": seeded.counts[day][entity], "outcome": "drained"}
        for entity in ENTITIES
    }
    # the raw events come from the gate, once the day has passed it
    assert {u: t for u, t in emitters.items() if u.startswith(f"{lake}/raw/")} == {
        f"{lake}/raw/{entity}": "quality_gate" for entity in ENTITIES
    }
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
    # a past midnight is refused at the first task too, naming the backfill that drains the day instead
    assert ended[run_ids[4]]["state"] == "failed"
    assert past_midnight_states["wait_for_late_records"] == "failed", past_midnight_states
    assert {past_midnight_states[f"drain.{e}"] for e in ENTITIES} == {"upstream_failed"}, past_midnight_states
    next_day = day + timedelta(days=1)
    assert f"is the logical date of the scheduled run of {next_day}, but the run drains {day}" in past_midnight_log
    assert "Delete this run" in past_midnight_log
    # the run's own conf: its bucket and topics, the stack's first day (the param's default) and its threshold
    first_day = stack_env.get("LAKE_FIRST_DAY") or None
    own = {"lake_bucket": scratch_bucket, "topic_prefix": kafka_topics, "lake_first_day": first_day, "min_records": 7}
    backfill_conf = json.dumps(own)
    assert f"--dag-run-conf '{backfill_conf}' --from-date {day}T00:00:00+00:00 --to-date {day}T00:00:00+00:00" in (
        past_midnight_log.replace('\\"', '"')  # the log is JSON: the conf's quotes come escaped
    ), past_midnight_log[-2000:]


@pytest.mark.parametrize(
    ("conf", "param"),
    [
        ({"lake_bucket": "Bad_Bucket!"}, "lake_bucket"),  # botocore would refuse it, after 7-14 min of retries
        ({"lake_bucket": "a..b"}, "lake_bucket"),  # S3 would refuse it
        ({"topic_prefix": "a b"}, "topic_prefix"),  # Kafka would refuse the topic name
        ({"topic_prefix": "x" * 245}, "topic_prefix"),  # <prefix>.user would be longer than Kafka's 249
        ({"lateness_grace_minutes": 181}, "lateness_grace_minutes"),  # beyond the 120 min the sensor's timeout allows
        ({"lake_first_day": "2026-13-45"}, "lake_first_day"),  # the analytics job, the last task, would refuse it
    ],
)
def test_a_param_that_would_fail_late_is_refused_when_the_run_is_created(airflow, conf, param):
    run_id = f"test-param-{uuid.uuid4().hex[:8]}"
    created = airflow.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"dag_run_id": run_id, "logical_date": datetime.now(UTC).isoformat(), "conf": conf},
    )
    if created.status_code == 200:  # a run that should not exist
        airflow.delete(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
    assert created.status_code == 400, created.text
    assert f"Invalid input for param {param}" in created.json()["detail"], created.text


def test_a_run_of_a_day_before_2026_runs_and_emits_no_raw_event_when_its_gate_fails(
    airflow, s3, scratch_bucket, kafka_topics
):
    # seeded 2025 history: Airflow gives a manual run whose logical date is before the DAG's start date no tasks
    rng = random.Random(uuid.uuid4().int)
    day = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 360))
    seeded = seed_kafka(day, day, PER_DAY, seed=13, settings=PlatformSettings(topic_prefix=kafka_topics))
    start = datetime.combine(day, datetime.min.time(), UTC)
    logical = start + timedelta(days=1, hours=9, microseconds=rng.randrange(1_000_000))  # "now" as on the next day
    conf = {"topic_prefix": kafka_topics, "lake_bucket": scratch_bucket, "min_records": 10 * PER_DAY}  # gate fails
    created = airflow.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"dag_run_id": f"test-2025-{uuid.uuid4().hex[:8]}", "logical_date": logical.isoformat(),
              "data_interval_start": start.isoformat(), "data_interval_end": (start + timedelta(days=1)).isoformat(),
              "conf": conf},
    )  # fmt: skip
    assert created.status_code == 200, created.text
    run_id = created.json()["dag_run_id"]

    ended = wait_for_runs(airflow, [run_id])[run_id]

    assert ended["state"] == "failed"
    states = task_states(airflow, run_id)
    assert states == {
        "wait_for_late_records": "success", **{f"drain.{e}": "success" for e in ENTITIES}, "quality_gate": "failed",
        "spark_clean": "upstream_failed", "spark_analytics": "upstream_failed",
    }, states  # fmt: skip
    for entity in ENTITIES:  # drained, but not ready for readers: it did not pass the gate
        assert manifest(s3, scratch_bucket, entity, day).record_count == seeded.counts[day][entity]
    events = airflow.get("/api/v2/assets/events", params={"source_dag_id": DAG_ID, "source_run_id": run_id})
    assert events.json()["asset_events"] == []
