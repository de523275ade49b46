"""Which S3 credentials the lake's Spark jobs use: the connection's, passed in spark-submit's environment and read
by s3a's environment provider alone, or, when the connection names none, s3a's own provider chain (the cluster's
settings, the environment, the instance's role), as the drain's boto3 uses its own default chain."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from devstack.environment import process_env
from plugins.lake_spark import CLEAN_JOB, LakeSparkSubmitOperator

PROVIDER = "spark.hadoop.fs.s3a.aws.credentials.provider"
ENVIRONMENT_PROVIDER = "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
WEB_IDENTITY_PROVIDER = "software.amazon.awssdk.auth.credentials.WebIdentityTokenFileCredentialsProvider"
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
KEY_ID, SECRET, TOKEN = "AKIALAKECREDSTEST", "s3cr3t-of-the-lake-Value-7", "t0ken-of-the-lake-Value-9"
DAY = {"data_interval_start": datetime(2026, 11, 24, tzinfo=UTC)}
LOCAL = {"conn_type": "spark", "host": "local[2]"}
STANDALONE = {"conn_type": "spark", "host": "spark://spark-master", "port": 7077}
YARN = {"conn_type": "spark", "host": "yarn"}
KUBERNETES = {"conn_type": "spark", "host": "k8s://https://kube.example:6443"}


def submitted(
    monkeypatch: pytest.MonkeyPatch, spark: dict[str, Any], aws: dict[str, Any], **kwargs: Any
) -> tuple[dict[str, str], dict[str, str]]:
    """The conf and env_vars the operator hands the provider's spark-submit, which is not run."""
    calls: list[tuple[dict[str, str], dict[str, str]]] = []
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: calls.append((self.conf, self.env_vars)))
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(spark))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", **aws}))
    LakeSparkSubmitOperator(task_id="clean", application=CLEAN_JOB, bucket="lake", **kwargs).execute(DAY)
    [(conf, env)] = calls
    return conf, env


@pytest.mark.parametrize("spark", [LOCAL, STANDALONE])
@pytest.mark.parametrize(
    ("aws", "token"),
    [
        ({"login": KEY_ID, "password": SECRET}, ""),
        ({"login": KEY_ID, "password": SECRET, "extra": {"aws_session_token": TOKEN}}, TOKEN),
        ({"extra": {"profile_name": "lake"}}, ""),
    ],
)
def test_connection_credentials_go_in_the_environment_and_s3a_reads_only_that(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spark: dict[str, Any], aws: dict[str, Any], token: str
) -> None:
    profiles = tmp_path / "credentials"
    profiles.write_text(f"[lake]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profiles))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))  # none: no profile of this machine's

    conf, env = submitted(
        monkeypatch, spark, {**aws, "extra": {"endpoint_url": "http://s3.lake:9000", **aws.get("extra", {})}}
    )

    assert conf[PROVIDER] == ENVIRONMENT_PROVIDER
    assert {name: env[name] for name in AWS_KEYS} == {
        "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": token,
    }  # fmt: skip
    assert not [value for value in conf.values() if KEY_ID in value or SECRET in value or TOKEN in value]
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://s3.lake:9000"


@pytest.mark.parametrize("spark", [LOCAL, STANDALONE, YARN, KUBERNETES])
@pytest.mark.parametrize("aws", [{}, {"extra": {"endpoint_url": "http://s3.lake:9000", "region_name": "eu-west-1"}}])
def test_without_connection_credentials_s3a_keeps_its_own_provider_chain(
    monkeypatch: pytest.MonkeyPatch, spark: dict[str, Any], aws: dict[str, Any]
) -> None:
    # keys in the worker's environment, as on the local stack: spark-submit inherits them, and s3a's default chain
    # reads them; an instance role or the cluster's own s3a settings would serve as well
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)

    conf, env = submitted(monkeypatch, spark, aws)

    assert PROVIDER not in conf
    assert not set(AWS_KEYS) & set(env)  # the operator passes none of its own
    if aws:
        assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://s3.lake:9000"
        assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"


@pytest.mark.parametrize(
    ("spark", "aws"), [(LOCAL, {"login": KEY_ID, "password": SECRET}), (LOCAL, {}), (YARN, {}), (STANDALONE, {})]
)
def test_a_provider_the_task_names_wins(monkeypatch: pytest.MonkeyPatch, spark: dict[str, Any], aws: dict) -> None:
    conf, _ = submitted(monkeypatch, spark, aws, conf={PROVIDER: WEB_IDENTITY_PROVIDER, "spark.log.level": "INFO"})

    assert (conf[PROVIDER], conf["spark.log.level"]) == (WEB_IDENTITY_PROVIDER, "INFO")


# --- real spark-submit on the stack's MinIO ---------------------------------------------------------------------------

# reads the one line of s3a://<bucket>/probe.txt into <this file>.out (the operator gives it --date and --bucket)
PROBE_JOB = """import sys
from pathlib import Path
from pyspark.sql import SparkSession

bucket = sys.argv[sys.argv.index("--bucket") + 1]
spark = SparkSession.builder.getOrCreate()
Path(__file__).with_suffix(".out").write_text(spark.read.text(f"s3a://{bucket}/probe.txt").first().value)
spark.stop()
"""


def core_site(folder: Path, key_id: str, secret: str) -> Path:
    """A Hadoop configuration folder whose core-site.xml gives s3a keys, as a cluster's own settings would."""
    folder.mkdir()
    properties = {"fs.s3a.access.key": key_id, "fs.s3a.secret.key": secret}
    (folder / "core-site.xml").write_text(
        "<configuration>"
        + "".join(f"<property><name>{k}</name><value>{escape(v)}</value></property>" for k, v in properties.items())
        + "</configuration>"
    )
    return folder


def spark_defaults(folder: Path, key_id: str, secret: str) -> Path:
    """A Spark configuration folder whose spark-defaults.conf gives s3a keys, as a cluster's own settings would (these
    win over the keys Spark copies from AWS_* variables into the Hadoop settings, which core-site.xml's do not)."""
    folder.mkdir()
    (folder / "spark-defaults.conf").write_text(
        f"spark.hadoop.fs.s3a.access.key {key_id}\nspark.hadoop.fs.s3a.secret.key {secret}\n"
    )
    return folder


@pytest.mark.parametrize("connection_keys", [False, True], ids=["cluster-keys", "connection-keys"])
def test_a_job_reads_the_lake_with_the_credentials_meant_for_it(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    stack_env: dict[str, str],
    s3: Any,
    scratch_bucket: str,
    connection_keys: bool,
) -> None:
    s3.put_object(Bucket=scratch_bucket, Key="probe.txt", Body=b"read through s3a\n")
    app = tmp_path / "probe.py"
    app.write_text(PROBE_JOB)
    for name in AWS_KEYS:  # the worker's environment holds no keys: only the ones meant for the job can work
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    keys = (stack_env["AWS_ACCESS_KEY_ID"], stack_env["AWS_SECRET_ACCESS_KEY"])
    if connection_keys:
        # the stack's connection names its keys; the cluster's own settings give others, which must not win
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", process_env()["AIRFLOW_CONN_AWS_DEFAULT"])
        monkeypatch.setenv("SPARK_CONF_DIR", str(spark_defaults(tmp_path / "spark", "AKIANOTTHELAKE", "wrong-secret")))
    else:
        # a connection naming no keys, on a cluster with its own (a stand-in for an instance role, which s3a's
        # default chain reads after them): before, the operator pinned s3a to the empty environment
        extra = {"endpoint_url": stack_env["S3_ENDPOINT_URL"], "region_name": stack_env["AWS_DEFAULT_REGION"]}
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": extra}))
        monkeypatch.setenv("HADOOP_CONF_DIR", str(core_site(tmp_path / "hadoop", *keys)))
    operator = LakeSparkSubmitOperator(task_id="probe", application=str(app), bucket=scratch_bucket)

    operator.execute(DAY)

    assert app.with_suffix(".out").read_text() == "read through s3a"
