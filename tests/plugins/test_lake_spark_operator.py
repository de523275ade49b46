"""The lake's SparkSubmitOperator: s3a settings, shipped packages, arguments, and no secret on the command line."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pyarrow.parquet as pq
import pytest
from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowTaskTimeout
from airflow.sdk.execution_time.context import OutletEventAccessors
from airflow.sdk.execution_time.task_runner import _run_execute_callable

from devstack.environment import process_env
from include.emulator.local_lake import drain_manifest, file_entry, gate_local_day
from include.lake import SOURCE_NAME, SUCCESS_NAME, day_status, manifest_key, partition_prefix, publication_key
from plugins.lake_assets import lake_alias
from plugins.lake_spark import (
    ANALYTICS_JOB,
    CLEAN_JOB,
    REPO_ROOT,
    LakeSparkSubmitOperator,
    class_data_conf,
    env_vars_become_conf,
    interval_day,
    job_arguments,
    s3a_conf,
    spark_master,
    status_document,
    zip_packages,
)
from tests.waiting import wait_until

SECRET = "pr1vate-s3cr3t-Value-42"
KEY_ID = "AKIATESTLAKESPARK"


def test_s3a_conf_for_an_http_endpoint_turns_tls_off_and_uses_path_style() -> None:
    assert s3a_conf("http://127.0.0.1:9000", "us-east-1") == {
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
    }


def test_s3a_conf_for_https_and_for_aws_itself() -> None:
    assert s3a_conf("https://minio.example:9000", "eu-west-1")["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert s3a_conf(None, "eu-west-1") == {"spark.hadoop.fs.s3a.endpoint.region": "eu-west-1"}
    with pytest.raises(ValueError, match="must be an http:// or https:// URL"):
        s3a_conf("minio:9000", "us-east-1")


def test_s3a_conf_names_the_environment_as_the_only_provider_only_for_credentials_given_there() -> None:
    key = "spark.hadoop.fs.s3a.aws.credentials.provider"
    environment = "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
    assert s3a_conf(None, "eu-west-1", environment_credentials=True) == {
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1",
        key: environment,
    }
    assert s3a_conf("http://127.0.0.1:9000", "us-east-1", environment_credentials=True)[key] == environment
    assert key not in s3a_conf("http://127.0.0.1:9000", "us-east-1", environment_credentials=False)


def test_zip_holds_the_shipped_packages_sources(tmp_path: Path) -> None:
    archive = zip_packages(REPO_ROOT, ("include", "spark_jobs"), tmp_path / "p.zip")

    names = set(zipfile.ZipFile(archive).namelist())

    expected = {
        p.relative_to(REPO_ROOT).as_posix() for d in ("include", "spark_jobs") for p in (REPO_ROOT / d).rglob("*.py")
    }
    assert names == expected
    assert {"include/records.py", "include/lake.py", "spark_jobs/clean.py"} <= names


def test_job_arguments() -> None:
    assert job_arguments("2026-11-24", "lake", ("pin", "geo"), "file:///l") == [
        "--date", "2026-11-24", "--bucket", "lake", "--lake-root", "file:///l", "--entity", "pin", "geo",
    ]  # fmt: skip
    assert job_arguments("2026-11-24", "lake") == ["--date", "2026-11-24", "--bucket", "lake"]
    assert job_arguments("2026-11-24", "lake", run=("scheduled__x", 2)) == [
        "--date", "2026-11-24", "--bucket", "lake", "--run-id", "scheduled__x", "--attempt", "2",
    ]  # fmt: skip
    assert job_arguments("2026-11-24", "lake", first_day="2026-11-01") == [
        "--date", "2026-11-24", "--bucket", "lake", "--first-day", "2026-11-01",
    ]  # fmt: skip
    assert job_arguments("2026-11-24", "lake", logical_date="2026-11-25T00:00:00+00:00") == [
        "--date", "2026-11-24", "--bucket", "lake", "--logical-date", "2026-11-25T00:00:00+00:00",
    ]  # fmt: skip
    assert job_arguments("2026-11-24", "lake", topic_prefix="test-abc") == [
        "--date", "2026-11-24", "--bucket", "lake", "--topic-prefix", "test-abc",
    ]  # fmt: skip
    assert job_arguments("2026-11-24", "lake", lease_wait=90.0) == [
        "--date", "2026-11-24", "--bucket", "lake", "--lease-wait", "90.0",
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown entities \['pins'\]"):
        job_arguments("2026-11-24", "lake", ("pins",))


def test_each_job_takes_every_argument_the_operator_gives_it() -> None:
    from spark_jobs import analytics, clean

    run = ("scheduled__x", 2)
    given = analytics.argument_parser().parse_args(
        job_arguments("2026-11-24", "lake", None, "file:///l", run, "2026-11-01", "2026-11-25T00:00:00+00:00", "t-p")
    )
    assert (given.date, given.bucket, given.lake_root, given.run_id, given.attempt) == (
        date(2026, 11, 24), "lake", "file:///l", "scheduled__x", 2,
    )  # fmt: skip
    assert (given.first_day, given.logical_date.isoformat(), given.topic_prefix) == (
        date(2026, 11, 1), "2026-11-25T00:00:00+00:00", "t-p",
    )  # fmt: skip
    cleaned = clean.argument_parser().parse_args(job_arguments("2026-11-24", "lake", ("geo",), None, run))
    assert (cleaned.date, cleaned.entity, cleaned.run_id) == (date(2026, 11, 24), ["geo"], "scheduled__x")
    assert (cleaned.lease_wait, given.lease_wait) == (3600.0, 3600.0)  # an hour unless the operator says otherwise
    waiting = clean.argument_parser().parse_args(job_arguments("2026-11-24", "lake", lease_wait=0.5))
    assert waiting.lease_wait == 0.5


def test_day_comes_from_the_data_interval() -> None:
    assert interval_day({"data_interval_start": datetime(2026, 11, 24, tzinfo=UTC)}) == "2026-11-24"
    with pytest.raises(AirflowFailException, match="no data interval"):  # no retry gives a run an interval
        interval_day({"data_interval_start": None})


def write_one_pin_partition(lake: Path, day: datetime) -> None:
    """A raw pin partition of one record as the DAG leaves it: object, the drain's manifest, _SUCCESS, the gate's
    _dq.json (the clean job cleans only a manifest the gate passed)."""
    prefix = partition_prefix("raw", "pin", day.date())
    record = {
        "index": 5, "unique_id": "00000000-0000-0000-0000-000000000005", "title": "t", "description": "d",
        "follower_count": "124k", "tag_list": "a", "is_image_or_video": "image", "image_src": "s", "downloaded": 1,
        "save_location": "Local save in /data/art", "category": "art",
    }  # fmt: skip
    line = {"partition": 0, "offset": 0, "timestamp": int(day.timestamp() * 1000), "key": record["unique_id"]}
    data = (json.dumps(line | {"value": record}) + "\n").encode()
    (lake / prefix).mkdir(parents=True)
    (lake / prefix / "part-0.jsonl").write_bytes(data)
    manifest = drain_manifest("pin", day.date(), [file_entry(prefix + "part-0.jsonl", data, 0, [0])])
    (lake / manifest_key("pin", day.date())).write_bytes(manifest.to_json())
    (lake / prefix / SUCCESS_NAME).write_bytes(b"")
    gate_local_day(lake, day.date(), ["pin"])


def test_submits_the_job_with_credentials_only_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    day = datetime(2026, 11, 24, tzinfo=UTC)
    write_one_pin_partition(tmp_path, day)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "login": KEY_ID, "password": SECRET,
                    "extra": {"endpoint_url": "http://127.0.0.1:9000"}}),
    )  # fmt: skip
    operator = LakeSparkSubmitOperator(
        task_id="clean", application=CLEAN_JOB, entities=["pin"], bucket="lake", lake_root=tmp_path.as_uri()
    )

    with caplog.at_level(logging.DEBUG):
        operator.execute({"data_interval_start": day, "run_id": "manual__one", "ti": SimpleNamespace(try_number=2)})

    logged = caplog.text + "".join(capfd.readouterr())
    assert "Spark-Submit cmd" in logged
    assert SECRET not in logged
    assert KEY_ID not in logged
    command = next(line for line in logged.splitlines() if "Spark-Submit cmd" in line)
    assert "--master local[2]" in command
    assert "spark.hadoop.fs.s3a.endpoint=http://127.0.0.1:9000" in command
    # s3a reads the connection's keys from the environment alone: not keys of the cluster's own settings
    assert (
        "spark.hadoop.fs.s3a.aws.credentials.provider="
        "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
    ) in command
    assert "--date 2026-11-24 --bucket lake --run-id manual__one --attempt 2" in command
    assert operator._hook._env["AWS_SECRET_ACCESS_KEY"] == SECRET
    table = pq.read_table(tmp_path / partition_prefix("clean", "pin", day.date()))
    assert table.select(["ind", "follower_count"]).to_pylist() == [{"ind": 5, "follower_count": 124_000}]


def local_clean(monkeypatch: pytest.MonkeyPatch, lake: Path, **kwargs: Any) -> LakeSparkSubmitOperator:
    """A clean task of pins on the local lake ``lake``, submitted to ``local[1]`` by spark-submit."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws"}))
    return LakeSparkSubmitOperator(
        task_id="clean", application=CLEAN_JOB, entities=["pin"], bucket="lake", lake_root=lake.as_uri(), **kwargs
    )


def spoil_line(lake: Path, day: datetime) -> None:
    """Make the partition's raw line one Spark cannot parse (an offset that is text), at the size its manifest gives
    (past the clean job's size check, to the parse)."""
    path = lake / partition_prefix("raw", "pin", day.date()) / "part-0.jsonl"
    spoiled = '{"offset": "seven"}'
    path.write_text(spoiled + " " * (path.stat().st_size - len(spoiled) - 1) + "\n")


def spoil_manifest(lake: Path, day: datetime) -> None:
    (lake / manifest_key("pin", day.date())).write_text("{not json")


@pytest.mark.parametrize(
    ("spoil", "task_day", "code", "says"),
    [
        (
            spoil_line,
            None,
            65,
            r"MALFORMED_RECORD_IN_PARSING.*\(reading file:///.*/raw/pin/dt=2026-11-24/part-0\.jsonl\)",
        ),
        (spoil_manifest, None, 65, r"manifest of raw/pin/dt=2026-11-24/ is not JSON"),
        (None, "2026-11-31", 64, r"--date must be YYYY-MM-DD, got '2026-11-31'"),
    ],
)
def test_a_failure_no_retry_can_fix_fails_the_task_at_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
    spoil: Callable[[Path, datetime], None] | None,
    task_day: str | None,
    code: int,
    says: str,
) -> None:
    day = datetime(2026, 11, 24, tzinfo=UTC)
    write_one_pin_partition(tmp_path, day)
    if spoil:
        spoil(tmp_path, day)
    operator = local_clean(monkeypatch, tmp_path, day=task_day)

    with pytest.raises(AirflowFailException, match=rf"exited with code {code}: .*Not retried"):
        operator.execute({"data_interval_start": day, "run_id": "manual__one", "ti": SimpleNamespace(try_number=1)})
    assert re.search(says, "".join(capfd.readouterr())), "the task log names what was refused"
    assert not (tmp_path / partition_prefix("clean", "pin", day.date())).exists()


def test_a_day_whose_drain_has_not_committed_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    day = datetime(2026, 11, 24, tzinfo=UTC)
    write_one_pin_partition(tmp_path, day)
    (tmp_path / partition_prefix("raw", "pin", day.date()) / SUCCESS_NAME).unlink()
    operator = local_clean(monkeypatch, tmp_path)

    with pytest.raises(AirflowException, match=r"Error code is: 1\.") as raised:
        operator.execute({"data_interval_start": day, "run_id": "manual__one", "ti": SimpleNamespace(try_number=1)})
    assert not isinstance(raised.value, AirflowFailException)


@pytest.mark.parametrize(
    "connection",
    [
        {"conn_type": "spark", "host": "local[2]"},
        {"conn_type": "spark", "host": "spark://spark-master", "port": 7077},
        {"conn_type": "spark", "host": "yarn"},
        {"conn_type": "spark", "host": "spark-master", "port": 7077},
        {"conn_type": "yarn", "host": "rm.example"},
    ],
)
def test_master_is_resolved_as_the_provider_hook_does(monkeypatch: pytest.MonkeyPatch, connection: dict) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(connection))

    expected = SparkSubmitHook(conn_id="spark_default")._connection["master"]

    assert spark_master(connection["conn_type"], connection["host"], connection.get("port")) == expected


def test_masters_whose_env_vars_become_conf() -> None:
    assert [env_vars_become_conf(m) for m in ("yarn", "k8s://https://kube:6443", "local[*]", "spark://m:7077")] == [
        True,
        True,
        False,
        False,
    ]


# a role to assume through an STS endpoint nothing listens on: resolving it first would fail otherwise
UNREACHABLE_ROLE = {"role_arn": "arn:aws:iam::000000000000:role/lake",
                    "service_config": {"sts": {"endpoint_url": "http://127.0.0.1:9"}}}  # fmt: skip


@pytest.mark.parametrize(
    ("spark_connection", "master"),
    [
        ({"conn_type": "spark", "host": "yarn"}, "yarn"),
        ({"conn_type": "spark", "host": "k8s://https://kube.example:6443"}, "k8s://https://kube.example:6443"),
    ],
)
@pytest.mark.parametrize(
    "aws", [{"login": KEY_ID, "password": SECRET}, {"extra": {"profile_name": "lake"}}, {"extra": UNREACHABLE_ROLE}]
)
def test_refuses_connection_credentials_where_env_vars_become_conf(
    monkeypatch: pytest.MonkeyPatch, spark_connection: dict[str, str], master: str, aws: dict[str, Any]
) -> None:
    submitted = []
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: submitted.append(self.env_vars))
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(spark_connection))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", **aws}))
    operator = LakeSparkSubmitOperator(task_id="clean", application=CLEAN_JOB, bucket="lake")

    with pytest.raises(AirflowFailException, match=rf"master '{master}'.*aws_default"):  # no retry fixes it
        operator.execute({"data_interval_start": datetime(2026, 11, 24, tzinfo=UTC)})
    assert submitted == []


def test_a_missing_spark_connection_fails_at_once_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    submitted = []
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: submitted.append(self.env_vars))
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "login": KEY_ID, "password": SECRET})
    )
    operator = LakeSparkSubmitOperator(task_id="clean", application=CLEAN_JOB, bucket="lake", conn_id="no_such_spark")

    # the provider's hook would fall back to YARN, and the task would blame the S3 credentials
    with pytest.raises(AirflowFailException, match="the Spark connection 'no_such_spark' is not defined"):
        operator.execute({"data_interval_start": datetime(2026, 11, 24, tzinfo=UTC)})
    assert submitted == []


@pytest.mark.parametrize(
    ("spark_connection", "refusal"),
    [
        ({"conn_type": "spark", "host": "spark://spark-master", "port": 7077},
         "'spark://spark-master:7077' runs no Python application's driver in cluster deploy mode"),
        ({"conn_type": "spark", "host": "local[*]"}, "'local[*]' cannot run a driver in cluster deploy mode"),
        # the provider raised a ValueError (retried, naming neither this operator nor the fix) before submitting
        ({"conn_type": "spark", "host": "yarn"},
         "'yarn' runs the driver in cluster deploy mode only for a task that tracks it through the ResourceManager's "
         "REST API (the Spark provider's durable tasks need it to find the application on a retry): give the task "
         "yarn_track_via_rm_api=True (and yarn_rm_auth as the cluster needs) or durable=False; or else"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("aws", [{}, {"login": KEY_ID, "password": SECRET}])
def test_refuses_cluster_deploy_mode_where_spark_submit_refuses_it_for_python(
    monkeypatch: pytest.MonkeyPatch, spark_connection: dict[str, Any], refusal: str, aws: dict[str, str]
) -> None:
    submitted = []
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: submitted.append(self.env_vars))
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(spark_connection))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", **aws}))
    operator = LakeSparkSubmitOperator(task_id="clean", application=CLEAN_JOB, bucket="lake", deploy_mode="cluster")

    # spark-submit would exit 1 ("not supported for python applications on standalone clusters"), retried for naught
    with pytest.raises(AirflowFailException, match=re.escape(refusal) + ".*submit in client mode"):
        operator.execute({"data_interval_start": datetime(2026, 11, 24, tzinfo=UTC)})
    assert submitted == []


def test_environment_credentials_are_fine_with_any_master(monkeypatch: pytest.MonkeyPatch) -> None:
    submitted = []
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: submitted.append(self.env_vars))
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "yarn"}))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws"}))
    operator = LakeSparkSubmitOperator(task_id="clean", application=CLEAN_JOB, bucket="lake")

    operator.execute({"data_interval_start": datetime(2026, 11, 24, tzinfo=UTC)})

    assert submitted == [{"PYSPARK_DRIVER_PYTHON": sys.executable}]


@pytest.mark.parametrize(
    ("connection", "deploy_mode"),
    [
        ({"conn_type": "spark", "host": "yarn", "extra": {"deploy-mode": "cluster"}}, None),
        ({"conn_type": "spark", "host": "k8s://https://kube.example:6443"}, "cluster"),
    ],
)
def test_a_driver_on_the_cluster_gets_no_local_interpreter(
    monkeypatch: pytest.MonkeyPatch, connection: dict, deploy_mode: str | None
) -> None:
    submitted = []
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: submitted.append(self.env_vars))
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(connection))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws"}))
    operator = LakeSparkSubmitOperator(
        task_id="clean", application=CLEAN_JOB, bucket="lake", deploy_mode=deploy_mode, yarn_track_via_rm_api=True
    )

    operator.execute({"data_interval_start": datetime(2026, 11, 24, tzinfo=UTC)})

    assert submitted == [{}]  # PYSPARK_DRIVER_PYTHON would name this worker's Python on the cluster


def test_class_data_conf_names_the_archive_only_when_it_exists(tmp_path: Path) -> None:
    archive = tmp_path / "spark.jsa"
    assert class_data_conf({}) == {}
    assert class_data_conf({"SPARK_CDS_ARCHIVE": str(archive)}) == {}
    archive.write_bytes(b"archive")
    assert class_data_conf({"SPARK_CDS_ARCHIVE": str(archive)}) == {
        "spark.driver.defaultJavaOptions": f"-XX:SharedArchiveFile={archive} -Xshare:auto"
    }


def test_a_timed_out_job_is_killed_with_the_python_it_started_and_left_to_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a client-mode driver stuck in Python code: spark-submit's JVM started it, and killing the JVM does not end it
    app = tmp_path / "stuck.py"
    app.write_text("import os, pathlib, time\npathlib.Path(__file__).with_suffix('.pid').write_text(str(os.getpid()))\n"
                   "time.sleep(600)\n")  # fmt: skip
    # long enough for spark-submit's JVM and then the driver to start on a busy machine
    operator = local_clean(monkeypatch, tmp_path, execution_timeout=timedelta(seconds=60))
    operator.application = str(app)

    # Airflow's task runner applies the timeout and, on AirflowTaskTimeout, calls on_kill before re-raising it
    with pytest.raises(AirflowTaskTimeout):  # not AirflowFailException: the task runner retries it
        _run_execute_callable({"data_interval_start": datetime(2026, 11, 24, tzinfo=UTC)}, operator.execute, operator)

    submit = operator._hook._submit_sp
    driver = int(app.with_suffix(".pid").read_text())  # written once the JVM had started it
    try:
        wait_until(lambda: submit.poll() is not None and gone(driver), "spark-submit and the driver it started to end")
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):  # leave no sleeper behind when the test fails
            psutil.Process(driver).kill()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_events_carry_the_status_of_the_raw_days_they_were_made_from(
    monkeypatch: pytest.MonkeyPatch, s3: Any, scratch_bucket: str
) -> None:
    day = datetime(2026, 11, 24, tzinfo=UTC)
    this_try = {"run_id": "scheduled__2026-11-24", "attempt": 2}
    statuses = {"pin": "complete", "geo": "partial", "user": "complete"}  # what the jobs used
    for entity, status in statuses.items():
        # each day has been drained complete since: the events tell what was cleaned, not what the raw zone has now
        raw = json.dumps({"status": "complete"})
        s3.put_object(Bucket=scratch_bucket, Key=manifest_key(entity, day.date()), Body=raw)
        writer = this_try if entity != "user" else {"run_id": "manual__other", "attempt": 1}  # user: cleaned since
        source = {"raw_data_sha256": "d", "raw_manifest_sha256": "m", "raw_status": status, "cleaned_at": "t", **writer}
        key = partition_prefix("clean", entity, day.date()) + SOURCE_NAME
        s3.put_object(Bucket=scratch_bucket, Key=key, Body=json.dumps(source))
    publication = {"day": "2026-11-24", "raw_status": "partial", "results": {}, "inputs": {}, **this_try}
    s3.put_object(Bucket=scratch_bucket, Key=publication_key(day.date()), Body=json.dumps(publication))
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: None)
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", process_env()["AIRFLOW_CONN_AWS_DEFAULT"])  # the stack's MinIO
    outlets = OutletEventAccessors()
    context = {"data_interval_start": day, "outlet_events": outlets, "run_id": this_try["run_id"],
               "ti": SimpleNamespace(try_number=this_try["attempt"])}  # fmt: skip

    for application, alias, entities in ((CLEAN_JOB, lake_alias("clean"), list(statuses)),
                                         (ANALYTICS_JOB, lake_alias("analytics"), None)):  # fmt: skip
        LakeSparkSubmitOperator(
            task_id="t", application=application, bucket=scratch_bucket, entities=entities, asset_alias=alias
        ).execute(context)

    events = {
        event.dest_asset_key.uri: event.extra
        for alias in (lake_alias("clean"), lake_alias("analytics"))
        for event in outlets[alias].asset_alias_events
    }
    lake, dt = f"s3://{scratch_bucket}", "2026-11-24"
    assert events == {
        f"{lake}/clean/pin": {"dt": dt, "bucket": scratch_bucket, "status": "complete"},
        f"{lake}/clean/geo": {"dt": dt, "bucket": scratch_bucket, "status": "partial"},
        f"{lake}/clean/user": {"dt": dt, "bucket": scratch_bucket, "status": None},  # another run's now: unknown
        f"{lake}/analytics": {"dt": dt, "bucket": scratch_bucket, "status": "partial"},
    }


def test_data_of_several_raw_days_is_complete_only_when_each_is() -> None:
    assert day_status(["complete", "complete", "complete"]) == "complete"
    assert day_status(["complete", "partial", "complete"]) == "partial"
    assert day_status(iter(["partial"])) == "partial"
    for unknown in ([], ["complete", "done"]):
        with pytest.raises(ValueError, match="expected raw statuses complete or partial"):
            day_status(unknown)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ('{"raw_status": "complete", "run_id": "r"}', "complete"),
        ('{"raw_status": "partial"}', "partial"),
        ('{"raw_status": "compl', None),  # cut short
        ('["complete"]', None),
        ('{"status": "complete"}', None),  # an older layout
        ('{"raw_status": null}', None),
    ],
)
def test_a_status_document_that_cannot_be_read_gives_no_status_instead_of_failing_a_finished_job(
    text: str, status: str | None
) -> None:
    document = status_document(text)
    assert (document and document["raw_status"]) == status


def test_application_args_are_refused_rather_than_dropped() -> None:
    with pytest.raises(ValueError, match="give no application_args"):
        LakeSparkSubmitOperator(task_id="clean", application=CLEAN_JOB, application_args=["--date", "2026-11-24"])
