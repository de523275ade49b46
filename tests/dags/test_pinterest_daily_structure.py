"""The shape of `pinterest_daily` as the dag-processor parses it (DESIGN.md §7/§8), and its run checks' glue."""

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
    assert params["accept_partial"] is False  # keeping a day Kafka cannot complete is a decision per run


_GLUE = """
import importlib.util, json, os
from datetime import UTC, datetime
from types import SimpleNamespace
from airflow.sdk.exceptions import AirflowFailException
spec = importlib.util.spec_from_file_location(
    "pinterest_daily_glue", os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], "pinterest_daily.py"))
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
day, next_day = datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)

def outcome(check, conf=None, run_type="scheduled", start=day, end=next_day, logical=day):
    context = {"dag": module.dag, "dag_run": SimpleNamespace(run_type=run_type, conf=conf),
               "data_interval_start": start, "data_interval_end": end, "logical_date": logical}
    try:
        result = getattr(module, check)(context)
    except Exception as exc:
        return [type(exc).__name__, str(exc)]
    return ["ok", result.day.isoformat() if result is not None else None]

print(json.dumps({
    "scheduled": outcome("_interval"),
    "no_interval": outcome("_interval", run_type="manual", start=None, end=None, logical=None),
    "future_midnight": outcome("_interval", run_type="manual", logical=datetime(2999, 1, 1, tzinfo=UTC)),
    "manual_now": outcome("_interval", run_type="manual", logical=datetime(2999, 1, 1, 9, 30, tzinfo=UTC)),
    "conf_ok": outcome("_refuse_unknown_conf", conf={"lake_bucket": "scratch"}),
    "conf_none": outcome("_refuse_unknown_conf"),
    "conf_misspelt": outcome("_refuse_unknown_conf", conf={"lake_buket": "scratch"}),
}))
"""


def test_run_checks_fail_permanently_with_the_reason():
    # The DAG's glue: values from a task context in, AirflowFailException (no retry) with the check's message out.
    result = subprocess.run([sys.executable, "-c", _GLUE], env=process_env(), capture_output=True, text=True,
                            cwd=paths.REPO, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcomes["scheduled"] == ["ok", "2026-11-25"]
    assert outcomes["manual_now"] == ["ok", "2026-11-25"]
    assert outcomes["conf_ok"] == outcomes["conf_none"] == ["ok", None]
    assert outcomes["no_interval"][0] == "AirflowFailException"
    assert "this run has no data interval" in outcomes["no_interval"][1]
    assert outcomes["future_midnight"][0] == "AirflowFailException"
    assert "is the logical date of the scheduled run of 2999-01-01" in outcomes["future_midnight"][1]
    declared = sorted(["topic_prefix", "lake_bucket", "lateness_grace_minutes", "max_quarantine_share",
                       "max_duplicate_key_share", "min_ind_match_rate", "min_records", "accept_partial"])  # fmt: skip
    assert outcomes["conf_misspelt"] == [
        "AirflowFailException",
        f"unknown run conf keys ['lake_buket']; the params are {declared}",
    ]
