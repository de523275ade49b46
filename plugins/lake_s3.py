"""Where every task reaches the lake: the ``aws_default`` connection, with the settings for what it leaves out.

The endpoint is the connection's ``endpoint_url`` extra, else ``S3_ENDPOINT_URL``; the region its ``region_name``
extra, else ``AWS_DEFAULT_REGION``; the credentials those the connection names (its login and password, a session
token, a profile or a role to assume, as the Amazon provider resolves them), else the machine's own: boto3's default
chain finds them for the drain, the quality gate and the operator's own reads (``lake_s3_client``), s3a's for the Spark
jobs (``docs/spark.md`` says where the two differ). No connection at all means the settings alone. The Spark jobs get
the endpoint and region as s3a settings and the connection's credentials in their environment
(``LakeSparkSubmitOperator``), so all of them reach one lake (boto3 alone would go to AWS whenever the connection names
no endpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from include.settings import S3_CLIENT_CONFIG, platform_settings


@dataclass(frozen=True)
class LakeAccess:
    """The lake's endpoint (None: AWS itself) and region."""

    endpoint_url: str | None
    region: str


def lake_connection(conn_id: str) -> Connection | None:
    """The connection ``conn_id``, or None when it is not defined."""
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def connection_endpoint(extra: dict[str, Any]) -> str | None:
    """The S3 endpoint a connection's extra names, as the Amazon provider reads it (its ``service_config`` for S3
    first, then ``endpoint_url``), or None."""
    service = extra.get("service_config", {}).get("s3", {})
    return service.get("endpoint_url") or extra.get("endpoint_url") or None


def lake_access(connection: Connection | None) -> LakeAccess:
    """The endpoint and region of the lake from ``connection``, the settings filling in what it leaves out."""
    settings = platform_settings()
    extra = connection.extra_dejson if connection else {}
    return LakeAccess(
        endpoint_url=connection_endpoint(extra) or settings.s3_endpoint_url,
        region=extra.get("region_name") or settings.aws_region,
    )


def names_credentials(conn_id: str) -> bool:
    """Whether the connection ``conn_id`` names credentials of its own: keys (login and password, or in its extra),
    a profile or a role to assume, as the Amazon provider reads them."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    if lake_connection(conn_id) is None:
        return False
    config = S3Hook(aws_conn_id=conn_id).conn_config
    return bool((config.aws_access_key_id and config.aws_secret_access_key) or config.profile_name or config.role_arn)


def lake_credentials(conn_id: str) -> dict[str, str]:
    """The credentials the connection ``conn_id`` names, resolved by the Amazon provider (a role assumed, a profile
    read), as the environment variables that s3a's ``EnvironmentVariableCredentialsProvider`` and boto3 read (the
    session token empty for permanent keys); empty when it names none, so that the machine's own count.

    Temporary ones (a role's, a session token) expire as the provider's own do: a job that outlives them fails, and
    its retry gets fresh ones.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    if not names_credentials(conn_id):
        return {}
    found = S3Hook(aws_conn_id=conn_id).get_session().get_credentials()
    if found is None:
        raise ValueError(f"connection {conn_id!r} names S3 credentials, but the Amazon provider found none from them")
    frozen = found.get_frozen_credentials()
    return {
        "AWS_ACCESS_KEY_ID": frozen.access_key,
        "AWS_SECRET_ACCESS_KEY": frozen.secret_key,
        "AWS_SESSION_TOKEN": frozen.token or "",  # empty: a token of the worker's own environment must not pair
    }


def lake_s3_client(conn_id: str = "aws_default") -> Any:
    """A boto3 S3 client on the lake, as ``lake_access`` resolves it.

    With a connection naming its endpoint (or no ``S3_ENDPOINT_URL`` to fill in) it is the provider's own client;
    otherwise one from the provider's session (the connection's keys, role and region) on ``S3_ENDPOINT_URL``, with
    the connection's ``config_kwargs`` and ``verify``.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from botocore.config import Config

    connection = lake_connection(conn_id)
    if connection is None:
        return platform_settings().s3_client()
    hook = S3Hook(aws_conn_id=conn_id)
    access = lake_access(connection)
    if connection_endpoint(connection.extra_dejson) or not access.endpoint_url:
        return hook.get_conn()
    config = Config(**S3_CLIENT_CONFIG)
    if hook.conn_config.botocore_config is not None:
        config = config.merge(hook.conn_config.botocore_config)
    session = hook.get_session(region_name=access.region)
    return session.client("s3", endpoint_url=access.endpoint_url, config=config, verify=hook.conn_config.verify)
