"""The shape of `pinterest_daily` as the dag-processor parses it (DESIGN.md §7/§8), and its run checks' glue."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import jinja2
import pytest

from devstack import paths
from devstack.environment import process_env

# Values and whether they are valid, labelled from S3's bucket naming rules, Kafka's topic names and the sensor's
# timeout; Airflow's Param validation (jsonschema, as when a run is created) must accept exactly the valid ones.
PARAM_VALUES = {
    "lake_bucket": {
        "pinterest-lake": True, "my.lake.2026": True, "abc": True, "a" * 63: True, "test-0123456789ab": True,
        "Bad_Bucket!": False, "Bad-Bucket": False, "lake_bucket": False, "ab": False, "a" * 64: False,
        "-lake": False, "lake-": False, ".lake": False, "my..lake": False, "192.168.0.1": False, "xn--lake": False,
        "sthree-lake": False, "amzn-s3-demo-lake": False, "lake-s3alias": False, "lake--ol-s3": False,
        "lake.mrap": False, "lake--x-s3": False, "lake--table-s3": False, "la ke": False, "lake\n": False,
    },
    # Kafka: topic names of at most 249 of [a-zA-Z0-9._-]; the longest topic is <prefix>.user
    "topic_prefix": {
        "pinterest": True, "test-abc_1.X": True, "x" * (249 - len(".user")): True,
        "a b": False, "": False, "x" * (249 - len(".user") + 1): False, "a/b": False, "pinü": False, "a\n": False,
    },
    "lake_first_day": {
        None: True, "2026-03-01": True, "2026-3-1": False, "March 1st": False, "2026-03-01\n": False,
        "2026-13-45": False, "2026-02-30": False,  # the form of a day, but no day: the analytics job would refuse it
    },
    "lateness_grace_minutes": {1: True, 10: True, 120: True, 0: False, 0.5: False, -1: False, 121: False, 600: False},
}  # fmt: skip

_DESCRIBE = """
import copy, datetime, json, os, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], "pinterest_daily.py")).dags[
    "pinterest_daily"]
tasks = {t.task_id: {
    "upstream": sorted(t.upstream_task_ids), "retries": t.retries,
    "backoff": float(t.retry_exponential_backoff), "retry_delay_s": t.retry_delay.total_seconds(),
    "outlets": [f"{type(o).__name__}:{o.name}" for o in t.outlets],
    "execution_timeout_s": t.execution_timeout and t.execution_timeout.total_seconds(),
    "sensor_timeout_s": getattr(t, "timeout", None),
    "first_day": getattr(t, "first_day", None),
    "logical_date": getattr(t, "logical_date", None),
    "topic_prefix": getattr(t, "topic_prefix", None),
} for t in dag.tasks}

def refusal(name, value):
    try:
        copy.deepcopy(dag.params.get_param(name)).resolve(value=value)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None

checked = {name: [[value, refusal(name, value)] for value in values]
           for name, values in json.loads(sys.argv[1]).items()}

def render(task, context):  # the Spark task's templated arguments, as the DAG's Jinja (StrictUndefined) does
    out = {}
    for field in ("name", "bucket", "first_day", "logical_date", "topic_prefix"):
        value = getattr(task, field)
        try:
            out[field] = task.get_template_env(dag).from_string(value).render(**context) if value else value
        except Exception as exc:
            out[field] = f"{type(exc).__name__}: {exc}"
    return out

params = {k: dag.params[k] for k in dag.params}
moment = datetime.datetime(2026, 11, 25, tzinfo=datetime.timezone.utc)
# a run without a logical date has no logical_date, data_interval_* nor ds in its context (not even as None)
contexts = {"no_interval": {"params": params},
            "interval": {"params": params, "logical_date": moment, "data_interval_start": moment}}
rendered = {t.task_id: {kind: render(t, context) for kind, context in contexts.items()}
            for t in dag.tasks if t.task_id.startswith("spark_")}
print(json.dumps({
    "timetable": type(dag.timetable).__name__, "expression": dag.timetable.expression,
    "tz": str(dag.timetable.timezone), "catchup": dag.catchup, "start": dag.start_date.isoformat(),
    "tags": sorted(dag.tags), "doc": dag.doc_md or "", "params": {k: dag.params[k] for k in dag.params},
    "schemas": {k: dag.params.get_param(k).schema for k in dag.params}, "checked": checked, "tasks": tasks,
    "rendered": rendered,
}))
"""


@pytest.fixture(scope="module")
def described() -> dict:
    env = {
        **process_env(),
        "LAKE_BUCKET": "lake-from-env",
        "PINTEREST_TOPIC_PREFIX": "topics-from-env",
        "LAKE_FIRST_DAY": "2026-03-01",
    }
    values = json.dumps({name: list(cases) for name, cases in PARAM_VALUES.items()})
    result = subprocess.run([sys.executable, "-c", _DESCRIBE, values], env=env, capture_output=True, text=True,
                            cwd=paths.REPO, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_daily_utc_data_intervals_static_start_and_no_catchup(described):
    assert described["timetable"] == "CronDataIntervalTimetable"
    assert described["expression"] == "0 0 * * *" and described["tz"] == "UTC"
    assert described["catchup"] is False
    # Kafka timestamps start at the epoch: a manual run of any day the drain can hold is not before the start date,
    # so Airflow gives it its tasks (it creates none for a logical date before it, and marks the run successful)
    assert datetime.fromisoformat(described["start"]) <= datetime.fromtimestamp(0, UTC)


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
        assert tasks[name]["upstream"] == ["wait_for_late_records"]
        assert tasks[name]["outlets"] == []  # a drained day is not ready for readers before the gate passed it
    assert tasks["quality_gate"]["upstream"] == drains
    # the gate emits each raw partition's event once the day has passed it
    assert tasks["quality_gate"]["outlets"] == [
        f"AssetAlias:pinterest_raw_{e}_any_bucket" for e in ("pin", "geo", "user")
    ]


def test_spark_cleaning_then_analytics_after_the_quality_gate(described):
    tasks = described["tasks"]
    assert tasks["spark_clean"]["upstream"] == ["quality_gate"]
    assert tasks["spark_analytics"]["upstream"] == ["spark_clean"]
    assert tasks["spark_clean"]["outlets"] == ["AssetAlias:pinterest_clean_any_bucket"]
    assert tasks["spark_analytics"]["outlets"] == ["AssetAlias:pinterest_analytics_any_bucket"]


def test_the_analytics_get_the_runs_first_day_which_defaults_to_the_setting(described):
    assert described["params"]["lake_first_day"] == "2026-03-01"  # LAKE_FIRST_DAY of the DAG's environment
    firsts = {name: task["first_day"] for name, task in described["tasks"].items() if name.startswith("spark_")}
    assert firsts["spark_clean"] is None
    rendered = jinja2.Template(firsts["spark_analytics"])
    assert rendered.render(params={"lake_first_day": "2026-03-01"}) == "2026-03-01"
    assert rendered.render(params={"lake_first_day": None}) == ""  # job_arguments leaves --first-day out


def test_the_analytics_get_the_runs_topic_prefix_for_the_backfills_its_errors_name(described):
    prefixes = {name: task["topic_prefix"] for name, task in described["tasks"].items() if name.startswith("spark_")}
    assert prefixes["spark_clean"] is None
    assert jinja2.Template(prefixes["spark_analytics"]).render(params={"topic_prefix": "test-abc"}) == "test-abc"


def test_the_analytics_get_the_runs_logical_date_to_record_how_a_clear_selects_the_run(described):
    logicals = {name: task["logical_date"] for name, task in described["tasks"].items() if name.startswith("spark_")}
    assert logicals["spark_clean"] is None
    rendered = jinja2.Template(logicals["spark_analytics"])
    moment = datetime(2026, 11, 26, 9, 30, 0, 5, tzinfo=UTC)
    assert datetime.fromisoformat(rendered.render(logical_date=moment)) == moment
    assert rendered.render(logical_date=None) == ""  # job_arguments leaves --logical-date out


def test_the_spark_tasks_arguments_render_for_runs_with_and_without_a_data_interval(described):
    rendered = described["rendered"]
    with_interval = {task: kinds["interval"] for task, kinds in rendered.items()}
    assert with_interval["spark_clean"]["name"] == "pinterest-clean-2026-11-25"
    assert with_interval["spark_analytics"]["name"] == "pinterest-analytics-2026-11-25"
    assert with_interval["spark_analytics"]["logical_date"] == "2026-11-25T00:00:00+00:00"
    # without an interval the templates still render, so the task fails with its own message (interval_day's,
    # AirflowFailException: no retry) instead of a retried UndefinedError
    for task, kinds in rendered.items():
        values = kinds["no_interval"]
        assert not any(str(v).startswith("UndefinedError") for v in values.values()), (task, values)
        assert values["bucket"] == "lake-from-env"
    assert rendered["spark_analytics"]["no_interval"]["logical_date"] == ""
    assert rendered["spark_analytics"]["interval"]["topic_prefix"] == "topics-from-env"  # the param's default


def test_every_try_has_a_timeout_generous_for_a_big_day_but_finite(described):
    timeouts = {name: task["execution_timeout_s"] for name, task in described["tasks"].items()}
    assert all(timeouts.values()), timeouts  # a hung try would hold its run (and, three of them, the schedule)
    hour = 3600
    assert timeouts["wait_for_late_records"] >= 60  # one poke: it reschedules between pokes
    for name in ("drain.pin", "drain.geo", "drain.user", "quality_gate", "spark_clean", "spark_analytics"):
        assert timeouts[name] >= hour, name
    chain = ("wait_for_late_records", "drain.pin", "quality_gate", "spark_clean", "spark_analytics")
    assert sum(timeouts[name] for name in chain) <= 24 * hour  # one try of each fits in a day
    for task in described["tasks"].values():
        assert task["retries"] >= 1  # a timed-out try is retried (Airflow's task runner: AirflowTaskTimeout)


def test_the_grace_sensor_outlasts_the_longest_grace_the_params_allow(described):
    longest_grace_s = described["schemas"]["lateness_grace_minutes"]["maximum"] * 60
    sensor_timeout_s = described["tasks"]["wait_for_late_records"]["sensor_timeout_s"]
    # a scheduled run starts once its day is over, so the sensor waits at most the grace (plus a 30 s poke)
    assert sensor_timeout_s >= longest_grace_s + 30 * 60  # and half an hour for a busy scheduler


def test_params_refuse_what_would_fail_late(described):
    for name, checked in described["checked"].items():
        for value, refusal in checked:
            if PARAM_VALUES[name][value]:
                assert refusal is None, (name, value, refusal)
            else:
                assert refusal is not None and refusal.startswith("ParamValidationError"), (name, value)


def test_params_default_to_the_platform_settings(described):
    params = described["params"]
    assert (params["topic_prefix"], params["lake_bucket"]) == ("topics-from-env", "lake-from-env")
    assert params["lateness_grace_minutes"] == 10 and params["max_quarantine_share"] == 0.01
    assert params["accept_partial"] is False  # keeping a day Kafka cannot complete is a decision per run


_GLUE = """
import importlib.util, json, os
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from airflow.sdk.exceptions import AirflowFailException
import include.drain as drain_package
spec = importlib.util.spec_from_file_location(
    "pinterest_daily_glue", os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], "pinterest_daily.py"))
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
day, next_day = datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)
SCRATCH = {"lake_bucket": "scratch", "topic_prefix": "test-abc", "lake_first_day": "2026-11-01"}

def context_of(conf=None, run_type="scheduled", start=day, end=next_day, logical=day):
    return {"dag": module.dag, "dag_run": SimpleNamespace(run_type=run_type, conf=conf), "run_id": "glue",
            "ti": SimpleNamespace(try_number=1), "data_interval_start": start, "data_interval_end": end,
            "logical_date": logical}

def outcome(check, **kwargs):
    # _interval takes the run's params as the tasks get them (defaults merged with the run's conf)
    extra = [{**module.dag.params.dump(), **(kwargs.get("conf") or {})}] if check == "_interval" else []
    try:
        result = getattr(module, check)(context_of(**kwargs), *extra)
    except Exception as exc:
        return [type(exc).__name__, str(exc)]
    return ["ok", result.day.isoformat() if result is not None else None]

def task_outcome(task_id, arguments=None, **params):
    callable_ = module.dag.get_task(task_id).python_callable
    try:
        callable_(params={**module.dag.params.dump(), **params}, **(arguments or {}), **context_of())
    except Exception as exc:
        return [type(exc).__name__, str(exc)]
    return ["ok", None]

def kafka_connection(defined):
    # the drain's Kafka client config from a kafka_default connection as given (None: not defined)
    os.environ.pop("AIRFLOW_CONN_KAFKA_DEFAULT", None)
    if defined is not None:
        os.environ["AIRFLOW_CONN_KAFKA_DEFAULT"] = defined
    try:
        return ["ok", module._kafka_config()]
    except Exception as exc:
        return [type(exc).__name__, str(exc)]

def kafka_extra(extra):
    # _kafka_config with a connection of this extra, and each of its values as the task's log shows it afterwards
    from airflow.sdk.log import redact
    result = kafka_connection(json.dumps({"conn_type": "kafka", "extra": extra}))
    return result + [{key: redact(f"value: {value}") for key, value in extra.items()}]

def drain_with_kafka_extra(extra):
    # the drain task of an isolated run, its kafka_default connection given this extra
    os.environ["AIRFLOW_CONN_KAFKA_DEFAULT"] = json.dumps({"conn_type": "kafka", "extra": extra})
    return task_outcome("drain.pin", lake_bucket=os.environ["GLUE_SCRATCH_BUCKET"], topic_prefix="test-glue-none")

lake_client = module._s3_client  # gate_events replaces it

def lake_without_connection():
    # the drain's S3 client when aws_default is not defined: the settings' endpoint, where the bucket is
    os.environ.pop("AIRFLOW_CONN_AWS_DEFAULT", None)
    try:
        client = lake_client()
        return ["ok", client.meta.endpoint_url, [b["Name"] for b in client.list_buckets()["Buckets"]]]
    except Exception as exc:
        return [type(exc).__name__, str(exc)]

today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

def gate_events(outcomes, writer="glue"):
    # the gate over reports of manifests the run id ``writer`` wrote (this very run's: a backfill reprocessing a day
    # reuses its run), with the gate's S3 work replaced: the events it emits, per entity
    reports = {entity: SimpleNamespace(dt=day.date(), status="complete", manifest_run_id=writer,
                                       metrics=SimpleNamespace(record_count=7, model_dump=dict))
               for entity in outcomes}
    events = {}
    drain_package.run_quality_gate = lambda *args: reports
    module._s3_client = lambda: None
    module.emit = lambda context, alias, assets, extra: events.setdefault(alias.name, extra)
    drained = {entity: {"outcome": outcome} for entity, outcome in outcomes.items()}
    task_outcome("quality_gate", {"drained": drained}, lake_bucket="lake")
    return events

print(json.dumps({
    "scheduled": outcome("_interval"),
    "no_interval": outcome("_interval", run_type="manual", start=None, end=None, logical=None),
    "future_midnight": outcome("_interval", run_type="manual", logical=datetime(2999, 1, 1, tzinfo=UTC)),
    "past_midnight": outcome("_interval", run_type="backfill", logical=next_day, conf={**SCRATCH, "min_records": 5}),
    "manual_now": outcome("_interval", run_type="manual", logical=datetime(2999, 1, 1, 9, 30, tzinfo=UTC)),
    "drain_bad_bucket": task_outcome("drain.pin", lake_bucket="Bad_Bucket!"),
    "drain_refused_bucket": task_outcome("drain.pin", lake_bucket="scratch.-x"),
    "open_day": outcome("_interval", run_type="manual", start=today, end=today + timedelta(days=1), logical=today),
    "first_day_after": outcome("_interval", conf={"lake_first_day": "2026-11-26"}),
    "kafka_sasl": kafka_extra(json.loads(os.environ["GLUE_SASL_EXTRA"])),
    "drain_bad_security_protocol": drain_with_kafka_extra(
        {"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"], "security.protocol": "glue-bogus"}),
    "kafka_undefined": kafka_connection(None),
    "kafka_without_address": kafka_connection('{"conn_type": "kafka"}'),
    "gate_bad_bucket": task_outcome("quality_gate", {"drained": {}}, lake_bucket="Bad_Bucket!"),
    "gate_events": gate_events({"pin": "drained", "geo": "kept_existing", "user": "kept_existing"}),
    "gate_events_other_run": gate_events({"pin": "drained", "geo": "kept_existing"}, writer="other-run"),
    "conf_ok": outcome("_refuse_unknown_conf", conf={"lake_bucket": "scratch"}),
    "conf_none": outcome("_refuse_unknown_conf"),
    "conf_misspelt": outcome("_refuse_unknown_conf", conf={"lake_buket": "scratch"}),
    "lake_without_connection": lake_without_connection(),  # last: it removes aws_default
}))
"""


# a kafka_default extra as a SASL/TLS cluster needs it (librdkafka properties), with one key the drain owns
SASL_EXTRA = {
    "bootstrap.servers": "b-1.cluster.example:9096,b-2.cluster.example:9096",
    "security.protocol": "SASL_SSL",
    "sasl.mechanisms": "SCRAM-SHA-512",
    "sasl.username": "drain-user",
    "sasl.password": "pw-Glue-7fq2Xk",
    "ssl.ca.location": "/etc/ssl/certs/cluster-ca.pem",
    "ssl.key.password": "key-Glue-91zQ",
    "sasl.oauthbearer.client.secret": "sec-Glue-4tYp",
    "group.id": "shared-group",
}
SECRET_KEYS = {"sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret"}  # by their names


def test_run_checks_fail_permanently_with_the_reason(scratch_bucket):
    # The DAG's glue: values from a task context in, AirflowFailException (no retry) with the check's message out.
    env = {**process_env(), "GLUE_SCRATCH_BUCKET": scratch_bucket, "GLUE_SASL_EXTRA": json.dumps(SASL_EXTRA)}
    result = subprocess.run([sys.executable, "-c", _GLUE], env=env, capture_output=True, text=True,
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
    # a past midnight too, of any run type (a backfill reusing a manual run keeps its interval)
    assert outcomes["past_midnight"][0] == "AirflowFailException"
    assert "2026-11-26T00:00Z is the logical date of the scheduled run of 2026-11-26" in outcomes["past_midnight"][1]
    # the backfill it names drains the run's own topics into its own lake
    scratch = '{"lake_bucket": "scratch", "topic_prefix": "test-abc", "lake_first_day": "2026-11-01", "min_records": 5}'
    days = "--from-date 2026-11-25T00:00:00+00:00 --to-date 2026-11-25T00:00:00+00:00"
    assert f"--dag-run-conf '{scratch}' {days}`" in outcomes["past_midnight"][1]
    # a request botocore refuses before sending it (here: a bucket name) fails at once instead of being retried
    for refused in (outcomes["drain_bad_bucket"], outcomes["gate_bad_bucket"]):
        assert refused[0] == "AirflowFailException" and 'Invalid bucket name "Bad_Bucket!"' in refused[1], refused
    # a bucket MinIO refuses (a name S3's rules allow) fails at once too, naming it
    refused = outcomes["drain_refused_bucket"]
    assert refused[0] == "AirflowFailException", refused
    assert "answered 400 to a HEAD of bucket 'scratch.-x'" in refused[1], refused
    # a run holding its open day's midnight (the scheduled run's slot), and a lake_first_day after the run's day
    assert outcomes["open_day"][0] == "AirflowFailException" and "is not over" in outcomes["open_day"][1]
    assert outcomes["first_day_after"][0] == "AirflowFailException"
    assert "lake_first_day 2026-11-26 is after the day it drains, 2026-11-25" in outcomes["first_day_after"][1]
    # no Kafka connection, or one without an address: named at once, not retried
    undefined, without_address = outcomes["kafka_undefined"], outcomes["kafka_without_address"]
    assert undefined[0] == "AirflowFailException" and "connection kafka_default is not defined" in undefined[1]
    assert without_address[0] == "AirflowFailException" and "has no 'bootstrap.servers'" in without_address[1]
    # the drain gets the connection's whole extra, a key the drain owns too (its consumer sets those itself)
    status, config, shown = outcomes["kafka_sasl"]
    assert (status, config) == ("ok", SASL_EXTRA)
    # each secret value is masked in the task's log from then on (Airflow itself masks the extra as one string)
    for key, value in SASL_EXTRA.items():
        if key in SECRET_KEYS:
            assert value not in shown[key] and "***" in shown[key], (key, shown[key])
    # an extra the client library refuses fails the drain at once, naming the key, not connecting in PLAINTEXT
    refused = outcomes["drain_bad_security_protocol"]
    assert refused[0] == "AirflowFailException", refused
    assert 'Invalid value "glue-bogus" for configuration property "security.protocol"' in refused[1], refused
    # without aws_default the drain reaches the lake where the Spark tasks do: S3_ENDPOINT_URL, not AWS
    status, endpoint, *buckets = outcomes["lake_without_connection"]
    assert status == "ok", endpoint
    assert endpoint == env["S3_ENDPOINT_URL"] and env["LAKE_BUCKET"] in buckets[0]
    # the event of a raw partition that passed the gate: drained by this run, or an earlier run's partition kept
    drained = {"dt": "2026-11-25", "bucket": "lake", "status": "complete", "records": 7, "outcome": "drained"}
    kept = {**drained, "outcome": "kept_existing"}
    assert outcomes["gate_events"] == {
        "pinterest_raw_pin_any_bucket": drained,
        "pinterest_raw_geo_any_bucket": kept,
        "pinterest_raw_user_any_bucket": kept,
    }
    # two runs of one day: the other one drained the day again after this one, and this run's gate checked its manifest
    assert outcomes["gate_events_other_run"] == {
        "pinterest_raw_pin_any_bucket": {**drained, "outcome": "drained_by_other_run"},
        "pinterest_raw_geo_any_bucket": kept,
    }
    declared = sorted(["topic_prefix", "lake_bucket", "lake_first_day", "lateness_grace_minutes",
                       "max_quarantine_share", "max_duplicate_key_share", "min_ind_match_rate", "min_records",
                       "accept_partial"])  # fmt: skip
    assert outcomes["conf_misspelt"] == [
        "AirflowFailException",
        f"unknown run conf keys ['lake_buket']; the params are {declared}",
    ]
