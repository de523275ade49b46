"""An API server of our own (``python -m api`` on a free port) producing to isolated topics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.api_process import REPO, RunningApi, start_api, stop_api
from tests.conftest import isolated_topics

__all__ = ["REPO", "RunningApi", "start_api", "stop_api"]


@pytest.fixture(scope="module")
def api_topics(stack_env: dict[str, str]) -> Iterator[str]:
    """Isolated entity topics for one test module; yields their prefix."""
    with isolated_topics(stack_env["KAFKA_BOOTSTRAP_SERVERS"], f"test-api-{uuid.uuid4().hex[:10]}") as prefix:
        yield prefix


@pytest.fixture(scope="module")
def api(stack_env: dict[str, str], api_topics: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """A running API without an API key, producing to this module's topics."""
    log_path = tmp_path_factory.mktemp("api") / "api.log"
    process, url = start_api(stack_env, api_topics, log_path)
    try:
        yield RunningApi(url=url, prefix=api_topics, bootstrap=stack_env["KAFKA_BOOTSTRAP_SERVERS"], log_path=log_path)
    finally:
        stop_api(process)
