"""An API server of our own (``python -m api`` on a free port) producing to isolated topics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from include.records import ENTITIES
from tests.api_process import REPO, RunningApi, start_api, stop_api

__all__ = ["REPO", "RunningApi", "start_api", "stop_api"]


@pytest.fixture(scope="module")
def api_topics(stack_env: dict[str, str]) -> Iterator[str]:
    """Isolated topics ``<prefix>.pin|geo|user`` (3 partitions) for one test module; yields the prefix."""
    prefix = f"test-api-{uuid.uuid4().hex[:10]}"
    names = [f"{prefix}.{e}" for e in ENTITIES]
    admin = KafkaAdminClient(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    admin.create_topics([NewTopic(n, 3, 1, topic_configs={"retention.ms": "-1"}) for n in names])
    try:
        yield prefix
    finally:
        admin.delete_topics(names)
        admin.close()


@pytest.fixture(scope="module")
def api(stack_env: dict[str, str], api_topics: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """A running API without an API key, producing to this module's topics."""
    log_path = tmp_path_factory.mktemp("api") / "api.log"
    process, url = start_api(stack_env, api_topics, log_path)
    try:
        yield RunningApi(url=url, prefix=api_topics, bootstrap=stack_env["KAFKA_BOOTSTRAP_SERVERS"], log_path=log_path)
    finally:
        stop_api(process)
