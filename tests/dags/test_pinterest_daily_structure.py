"""The shape of `pinterest_daily` as the dag-processor parses it (DESIGN.md §7/§8)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devstack import paths
from devstack.environment import process_env

_DESCRIBE = """
import json, os
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], "pinterest_daily.py")).dags[
    "pinterest_daily"]
tasks = {t.task_id: {
    "upstream": sorted(t.upstream_task_ids), "retries": t.retries,
    "backoff": float(t.retry_exponential_backoff), "retry_delay_s": t.retry_delay.total_seconds(),
    "outlets": [f"{type(o).__name__}:{o.name}" for o in t.outlets],
} for t in dag.tasks}
print(json.dumps({
    "timetable": type(dag.timetable).__name__, "expression": dag.timetable.expression,
    "tz": str(dag.timetable.timezone), "catchup": dag.catchup, "start": dag.start_date.isoformat(),
    "tags": sorted(dag.tags), "doc": dag.doc_md or "", "params": {k: dag.params[k] for k in dag.params},
    "tasks": tasks,
}))
"""


@pytest.fixture(scope="module")
def described() -> dict:
    env = {**process_env(), "LAKE_BUCKET": "lake-from-env", "PINTEREST_TOPIC_PREFIX": "topics-from-env"}
    result = subprocess.run([sys.executable, "-c", _DESCRIBE], env=env, capture_output=True, text=True,
                            cwd=paths.REPO, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_daily_utc_data_intervals_static_start_and_no_catchup(described):
    assert described["timetable"] == "CronDataIntervalTimetable"
    assert described["expression"] == "0 0 * * *" and described["tz"] == "UTC"
    assert described["catchup"] is False and described["start"] == "2026-01-01T00:00:00+00:00"


def test_documented_tagged_and_retried_with_exponential_backoff(described):
    assert "backfill create" in described["doc"] and "logical_date" in described["doc"]
    assert described["tags"] == ["daily", "drain", "pinterest"]
    for task in described["tasks"].values():
        assert task["retries"] >= 1 and task["backoff"] > 1 and task["retry_delay_s"] > 0


def test_one_drain_per_entity_between_the_grace_wait_and_the_quality_gate(described):
    tasks = described["tasks"]
    drains = ["drain.geo", "drain.pin", "drain.user"]
    assert sorted(tasks) == sorted([*drains, "wait_for_late_records", "quality_gate", "spark_clean", "spark_analytics"])
    for name in drains:
        entity = name.split(".")[1]
        assert tasks[name]["upstream"] == ["wait_for_late_records"]
        assert tasks[name]["outlets"] == [f"AssetAlias:pinterest_raw_{entity}_any_bucket"]
    assert tasks["quality_gate"]["upstream"] == drains


def test_spark_cleaning_then_analytics_after_the_quality_gate(described):
    tasks = described["tasks"]
    assert tasks["spark_clean"]["upstream"] == ["quality_gate"]
    assert tasks["spark_analytics"]["upstream"] == ["spark_clean"]
    assert tasks["spark_clean"]["outlets"] == ["AssetAlias:pinterest_clean_any_bucket"]
    assert tasks["spark_analytics"]["outlets"] == ["AssetAlias:pinterest_analytics_any_bucket"]


def test_params_default_to_the_platform_settings(described):
    params = described["params"]
    assert (params["topic_prefix"], params["lake_bucket"]) == ("topics-from-env", "lake-from-env")
    assert params["lateness_grace_minutes"] == 10 and params["max_quarantine_share"] == 0.01
