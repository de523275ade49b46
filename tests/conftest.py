"""Fixtures that reach the real local stack (`python -m devstack up`).

A test that needs a service fails, never skips, when the service is down.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from devstack import paths
from devstack.environment import without_aws
from devstack.secrets import read_env_file
from include.settings import PlatformSettings
from tests.api_process import RunningApi, running_api

pytest_plugins = ["tests.no_skips"]

STACK_ENV = read_env_file(paths.STACK_ENV_FILE)


def pytest_configure(config: pytest.Config) -> None:
    """Give the code under test the stack's settings (over the shell's, as the stack's servers use them; none of the
    shell's other AWS settings) and the venv's tools on PATH."""
    for name in set(os.environ) - set(without_aws(os.environ)):
        del os.environ[name]  # a caller's session token or profile: sent with the stack's keys, MinIO refuses them
    os.environ.update(STACK_ENV)
    os.environ["PATH"] = f"{paths.VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"


def _require_stack() -> dict[str, str]:
    if not STACK_ENV:
        pytest.fail(f"the local stack is not set up ({paths.STACK_ENV_FILE} missing): run `make up`")
    return dict(STACK_ENV)


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """The stack's settings; fails when Kafka or MinIO does not answer."""
    env = _require_stack()
    from kafka import KafkaAdminClient

    try:
        KafkaAdminClient(bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"], request_timeout_ms=5000).close()
    except Exception as exc:  # any failure means the stack is not usable
        pytest.fail(f"Kafka at {env['KAFKA_BOOTSTRAP_SERVERS']} is not reachable ({exc}): run `make up`")
    try:
        PlatformSettings.model_validate(env).s3_client().list_buckets()
    except Exception as exc:  # as above
        pytest.fail(f"MinIO at {env['S3_ENDPOINT_URL']} is not reachable ({exc}): run `make up`")
    return env


@pytest.fixture(scope="session")
def s3(stack_env: dict[str, str]):
    """A boto3 S3 client on the stack's MinIO."""
    return PlatformSettings.model_validate(stack_env).s3_client()


@pytest.fixture
def scratch_bucket(s3) -> Iterator[str]:
    """A new empty bucket, emptied and removed after the test."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys})
    s3.delete_bucket(Bucket=name)


@contextmanager
def isolated_topics(
    bootstrap_servers: str, prefix: str, retention_ms: int = -1, configs: dict[str, str] | None = None
) -> Iterator[str]:
    """Create topics ``<prefix>.pin|geo|user`` (3 partitions, no retention limit unless given, other ``configs``);
    yield the prefix; delete them."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from include.records import ENTITIES

    names = [f"{prefix}.{e}" for e in ENTITIES]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    settings = {"retention.ms": str(retention_ms), **(configs or {})}
    admin.create_topics([NewTopic(n, 3, 1, topic_configs=settings) for n in names])
    admin.close()
    try:
        yield prefix
    finally:
        # a new client: a test may have restarted the broker, leaving an old one's connection in backoff
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
        admin.delete_topics(names)
        admin.close()


@pytest.fixture
def kafka_topics(stack_env: dict[str, str]) -> Iterator[str]:
    """Isolated entity topics for one test; yields their prefix."""
    with isolated_topics(stack_env["KAFKA_BOOTSTRAP_SERVERS"], f"test-{uuid.uuid4().hex[:12]}") as prefix:
        yield prefix


@pytest.fixture(scope="module")
def api_topics(stack_env: dict[str, str]) -> Iterator[str]:
    """Isolated entity topics for one test module; yields their prefix."""
    with isolated_topics(stack_env["KAFKA_BOOTSTRAP_SERVERS"], f"test-api-{uuid.uuid4().hex[:10]}") as prefix:
        yield prefix


@pytest.fixture(scope="module")
def api(stack_env: dict[str, str], api_topics: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """A running API without an API key, producing to this module's topics."""
    log_path = tmp_path_factory.mktemp("api") / "api.log"
    with running_api(stack_env, api_topics, log_path) as url:
        yield RunningApi(url=url, prefix=api_topics, bootstrap=stack_env["KAFKA_BOOTSTRAP_SERVERS"], log_path=log_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run tests that stop and restart stack services last, so they cannot disturb the others."""
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


REAL_PIN_SAMPLE = paths.REPO / "tests" / "data" / "pins_real_sample.jsonl"
"""200 real pin rows of the original data set, messy values included."""
