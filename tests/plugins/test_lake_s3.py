"""Every task reaches the stack's MinIO whatever the ``aws_default`` connection leaves out (real MinIO)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from include.lake import SOURCE_NAME, partition_prefix
from plugins.lake_s3 import lake_credentials, lake_s3_client
from plugins.lake_spark import CLEAN_JOB, LakeSparkSubmitOperator
from tests.minio_sts import ROLE_ARN, temporary_credentials

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


def client_of(credentials: dict[str, str], stack_env: dict[str, str]) -> Any:
    """A plain boto3 client on the stack's MinIO with exactly ``credentials`` (names as in the environment)."""
    return boto3.client(
        "s3",
        endpoint_url=stack_env["S3_ENDPOINT_URL"],
        region_name=stack_env["AWS_DEFAULT_REGION"],
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"] or None,
    )


def test_the_credentials_a_connection_names_are_resolved_as_the_provider_does(
    stack_env: dict[str, str], scratch_bucket: str, tmp_path: Any, monkeypatch
) -> None:
    keys = {"login": stack_env["AWS_ACCESS_KEY_ID"], "password": stack_env["AWS_SECRET_ACCESS_KEY"]}
    for nameless in (None, {}, {"extra": {"endpoint_url": stack_env["S3_ENDPOINT_URL"]}}, {"login": "only-a-login"}):
        connect(monkeypatch, nameless)
        assert lake_credentials("aws_default") == {}, nameless  # the environment's keys count
    connect(monkeypatch, keys)
    assert lake_credentials("aws_default") == {
        "AWS_ACCESS_KEY_ID": keys["login"], "AWS_SECRET_ACCESS_KEY": keys["password"], "AWS_SESSION_TOKEN": ""
    }  # fmt: skip

    # temporary keys with their session token in the extra; a profile holding such keys; a role to assume
    issued = temporary_credentials(stack_env)
    temporary = {"login": issued["AWS_ACCESS_KEY_ID"], "password": issued["AWS_SECRET_ACCESS_KEY"],
                 "extra": {"aws_session_token": issued["AWS_SESSION_TOKEN"]}}  # fmt: skip
    profiles = tmp_path / "credentials"
    profiles.write_text(
        "[lake]\n" + "".join(f"{name.lower()} = {value}\n" for name, value in temporary_credentials(stack_env).items())
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profiles))
    minio = stack_env["S3_ENDPOINT_URL"]
    role = {**keys, "extra": {"role_arn": ROLE_ARN, "service_config": {"sts": {"endpoint_url": minio}}}}
    for kind, connection in {"token": temporary, "profile": {"extra": {"profile_name": "lake"}}, "role": role}.items():
        connect(monkeypatch, connection)
        resolved = lake_credentials("aws_default")
        assert resolved["AWS_SESSION_TOKEN"], kind
        assert resolved["AWS_ACCESS_KEY_ID"] != stack_env["AWS_ACCESS_KEY_ID"], kind  # not the root keys
        assert listed(client_of(resolved, stack_env), scratch_bucket) == [], kind  # MinIO takes them
        without_token = {**resolved, "AWS_SESSION_TOKEN": ""}
        with pytest.raises(ClientError, match=r"InvalidTokenId|InvalidAccessKeyId|403"):
            listed(client_of(without_token, stack_env), scratch_bucket)
