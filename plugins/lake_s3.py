"""Where every task reaches the lake: the ``aws_default`` connection, with the settings for what it leaves out.

The endpoint is the connection's ``endpoint_url`` extra, else ``S3_ENDPOINT_URL``; the region its ``region_name``
extra, else ``AWS_DEFAULT_REGION``; the keys its login and password, else the environment's ``AWS_*`` keys. No
connection at all means the settings alone. The Spark jobs get exactly these as s3a settings
(``LakeSparkSubmitOperator``), and the drain, the quality gate and the operator's own reads use ``lake_s3_client``,
so all of them reach one lake (boto3 alone would go to AWS whenever the connection names no endpoint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from include.settings import S3_CLIENT_CONFIG, platform_settings


@dataclass(frozen=True)
class LakeAccess:
    """The lake's endpoint (None: AWS itself), region, and keys (empty: the environment's)."""

    endpoint_url: str | None
    region: str
    credentials: dict[str, str] = field(default_factory=dict)


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
    """The endpoint, region and keys of the lake from ``connection``, the settings filling in what it leaves out."""
    settings = platform_settings()
    extra = connection.extra_dejson if connection else {}
    credentials = {}
    if connection and connection.login and connection.password:
        credentials = {"AWS_ACCESS_KEY_ID": connection.login, "AWS_SECRET_ACCESS_KEY": connection.password}
    return LakeAccess(
        endpoint_url=connection_endpoint(extra) or settings.s3_endpoint_url,
        region=extra.get("region_name") or settings.aws_region,
        credentials=credentials,
    )


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
