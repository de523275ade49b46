"""`python -m include.emulator post` and the demo's posting step fail, saying how many and why, unless every record
was accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from demo.__main__ import post_live
from tests.api.kafka_helpers import read_all
from tests.api_process import REPO, RunningApi, running_api

KEY = "k-" + "51ab" * 8


@pytest.fixture(scope="module")
def keyed_api(
    stack_env: dict[str, str], api_topics: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApi]:
    """An API that requires the key KEY."""
    log_path = tmp_path_factory.mktemp("keyed") / "api.log"
    with running_api(stack_env, api_topics, log_path, {"API_KEY": KEY}) as url:
        yield RunningApi(url, api_topics, stack_env["KAFKA_BOOTSTRAP_SERVERS"], log_path, api_key=KEY)


def post(api: RunningApi, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "API_KEY"} | ({"API_KEY": key} if key else {})
    command = [sys.executable, "-m", "include.emulator", "post", "--url", api.url, "--count", "2", "--seed", "4"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_post_exits_1_saying_the_api_wants_a_key(keyed_api: RunningApi) -> None:
    before = [len(read_all(keyed_api.bootstrap, topic)) for topic in keyed_api.topics]
    result = post(keyed_api, key=None)
    assert result.returncode == 1, result.stderr
    assert "the API requires X-API-Key: set API_KEY" in result.stderr
    assert [len(read_all(keyed_api.bootstrap, topic)) for topic in keyed_api.topics] == before


def test_post_exits_0_when_every_record_is_accepted(keyed_api: RunningApi) -> None:
    result = post(keyed_api, key=KEY)
    assert result.returncode == 0, result.stderr
    assert [len(read_all(keyed_api.bootstrap, topic)) for topic in keyed_api.topics] == [2, 2, 2]


def test_the_demo_stops_unless_every_live_record_is_accepted(
    keyed_api: RunningApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("API_KEY", raising=False)
    with pytest.raises(SystemExit) as stopped:
        post_live(keyed_api.url, 1, seed=5)
    assert stopped.value.code == 1
    assert "the API requires X-API-Key: set API_KEY" in capsys.readouterr().err
