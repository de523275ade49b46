"""Every task reaches the stack's MinIO whatever the ``aws_default`` connection leaves out (real MinIO)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from botocore.exceptions import ClientError

from include.lake import SOURCE_NAME, partition_prefix
from plugins.lake_s3 import lake_s3_client
from plugins.lake_spark import CLEAN_JOB, LakeSparkSubmitOperator

CONNECTION = "AIRFLOW_CONN_AWS_DEFAULT"


def connect(monkeypatch: pytest.MonkeyPatch, connection: dict[str, Any] | None) -> None:
    """Define ``aws_default`` as ``connection`` (None: not at all)."""
    if connection is None:
        monkeypatch.delenv(CONNECTION, raising=False)
    else:
        monkeypatch.setenv(CONNECTION, json.dumps({"conn_type": "aws", **connection}))


def listed(client: Any, bucket: str) -> list[str]:
    return [entry["Key"] for entry in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


CONNECTIONS_WITHOUT_ENDPOINT: dict[str, Any] = {
    "undefined": lambda env: None,
    "empty": lambda env: {},
    "keys-only": lambda env: {"login": env["AWS_ACCESS_KEY_ID"], "password": env["AWS_SECRET_ACCESS_KEY"]},
    "region-only": lambda env: {"extra": {"region_name": env["AWS_DEFAULT_REGION"]}},
}


@pytest.mark.parametrize("connection", CONNECTIONS_WITHOUT_ENDPOINT)
def test_a_connection_without_an_endpoint_reaches_the_settings_endpoint(
    connection: str, stack_env: dict[str, str], s3: Any, scratch_bucket: str, monkeypatch
) -> None:
    s3.put_object(Bucket=scratch_bucket, Key="a", Body=b"1")
    connect(monkeypatch, CONNECTIONS_WITHOUT_ENDPOINT[connection](stack_env))
    client = lake_s3_client()
    assert client.meta.endpoint_url == stack_env["S3_ENDPOINT_URL"]
    assert listed(client, scratch_bucket) == ["a"]


def test_the_connections_keys_and_endpoint_win_over_the_environments(
    stack_env: dict[str, str], scratch_bucket: str, monkeypatch
) -> None:
    wrong_keys = {"login": stack_env["AWS_ACCESS_KEY_ID"], "password": "not-the-secret"}
    connect(monkeypatch, wrong_keys)
    with pytest.raises(ClientError, match=r"SignatureDoesNotMatch|403"):
        listed(lake_s3_client(), scratch_bucket)
    # an endpoint of its own: the provider's client on it (here the same MinIO by another name)
    other_name = stack_env["S3_ENDPOINT_URL"].replace("127.0.0.1", "localhost")
    assert other_name != stack_env["S3_ENDPOINT_URL"]
    for named in ({"endpoint_url": other_name}, {"service_config": {"s3": {"endpoint_url": other_name}}}):
        connect(monkeypatch, {"extra": named})
        client = lake_s3_client()
        assert client.meta.endpoint_url == other_name, named
        assert listed(client, scratch_bucket) == []
    # the settings' endpoint keeps the connection's client settings
    connect(monkeypatch, {"extra": {"config_kwargs": {"retries": {"max_attempts": 7}}}})
    client = lake_s3_client()
    assert client.meta.endpoint_url == stack_env["S3_ENDPOINT_URL"]
    assert client.meta.config.retries["total_max_attempts"] == 8  # botocore's count: 7 retries after the first try
    assert listed(client, scratch_bucket) == []


def test_the_operator_reads_what_its_job_recorded_without_a_connection(
    s3: Any, scratch_bucket: str, monkeypatch
) -> None:
    day = date(2026, 11, 24)
    source = {"raw_status": "partial", "run_id": "r", "attempt": 1}
    s3.put_object(
        Bucket=scratch_bucket, Key=partition_prefix("clean", "pin", day) + SOURCE_NAME, Body=json.dumps(source)
    )
    connect(monkeypatch, None)
    operator = LakeSparkSubmitOperator(task_id="clean", application=CLEAN_JOB, entities=["pin"])
    assert operator.statuses_used(scratch_bucket, day, ("r", 1)) == {"pin": "partial"}
