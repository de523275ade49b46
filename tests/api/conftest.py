"""Fixtures of the API tests that run a scratch Kafka broker of their own (tests/api/scratch_kafka.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.api.scratch_kafka import ScratchKafka, scratch_kafka


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchKafka]:
    """A scratch broker for the tests of one module (a broker start takes seconds)."""
    with scratch_kafka(tmp_path_factory.mktemp("scratch-kafka")) as kafka:
        yield kafka


@pytest.fixture
def scratch_prefix(broker: ScratchKafka) -> Iterator[str]:
    """Topics of this test on the scratch broker, which is running again after the test whatever it did to it."""
    prefix = f"test-stall-{uuid.uuid4().hex[:10]}"
    broker.create_topics(prefix)
    yield prefix
    broker.ensure_running()
