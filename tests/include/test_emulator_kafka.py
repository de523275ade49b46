"""The emulator against the real stack: seeding Kafka by day, and posting to a running API."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from kafka.errors import KafkaTimeoutError

import include.emulator.seed
from include.emulator import SeedError, seed_kafka
from include.emulator.__main__ import main as emulator_main
from include.records import ENTITIES
from include.settings import PlatformSettings
from tests.api.kafka_helpers import read_all
from tests.api_process import REPO, RunningApi, free_port, running_api, start_api, stop_api
from tests.conftest import isolated_topics


def test_seed_kafka_writes_the_reported_counts_on_the_right_days(stack_env: dict[str, str], kafka_topics: str) -> None:
    settings = PlatformSettings(
        KAFKA_BOOTSTRAP_SERVERS=stack_env["KAFKA_BOOTSTRAP_SERVERS"], PINTEREST_TOPIC_PREFIX=kafka_topics
    )
    report = seed_kafka(date(2026, 11, 20), date(2026, 11, 22), 40, seed=9, settings=settings)

    found: dict[date, Counter[str]] = {}
    for entity in ENTITIES:
        for record in read_all(settings.kafka_bootstrap_servers, settings.topic(entity)):
            day = datetime.fromtimestamp(record.timestamp / 1000, UTC).date()
            found.setdefault(day, Counter())[entity] += 1
            assert json.loads(record.value)["index" if entity == "pin" else "ind"] >= 0
    assert {day: dict(counts) for day, counts in found.items()} == report.counts
    assert report.counts == {day: dict.fromkeys(ENTITIES, 40) for day in days(3)}
    assert report.total == 3 * 40 * 3


def days(n: int) -> list[date]:
    return [date(2026, 11, 20 + offset) for offset in range(n)]


def test_post_cli_posts_every_record_and_summarises(api: RunningApi) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "include.emulator", "post", "--url", api.url, "--count", "30", "--seed", "4"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "200: 90" in result.stdout
    stored = sum(len(read_all(api.bootstrap, api.topic(entity))) for entity in ENTITIES)
    assert stored == 90


def emulator(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the emulator CLI; its result and how long it took."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "include.emulator", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, time.monotonic() - started


PROMPTLY_S = 30
"""A failure is reported within this (a cold interpreter included); kafka-python's own default wait is 60 s."""
SEED_ARGS = ("seed-kafka", "--per-day", "5", "--from", "2026-11-20", "--to", "2026-11-21")


def one_line(stderr: str) -> str:
    """The only line of ``stderr`` (fails when there is a traceback or more)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_seed_kafka_names_the_missing_topics_at_once(stack_env: dict[str, str]) -> None:
    prefix = f"test-absent-{uuid.uuid4().hex[:10]}"
    result, took_s = emulator(*SEED_ARGS, "--topic-prefix", prefix)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert all(f"{prefix}.{entity}" in line for entity in ENTITIES), line
    assert took_s < PROMPTLY_S


def test_a_failed_seed_stops_a_python_caller_such_as_the_demo(stack_env: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        emulator_main([*SEED_ARGS, "--topic-prefix", f"test-absent-{uuid.uuid4().hex[:10]}"])
    assert stopped.value.code == 1


def test_seed_kafka_names_the_servers_when_kafka_does_not_answer() -> None:
    servers = f"127.0.0.1:{free_port()}"
    result, took_s = emulator(*SEED_ARGS, env={"KAFKA_BOOTSTRAP_SERVERS": servers})
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"Kafka does not answer at {servers}" in line
    assert "make up" in line
    assert took_s < PROMPTLY_S


def test_seed_kafka_raises_seed_error_naming_a_missing_topic(stack_env: dict[str, str]) -> None:
    settings = PlatformSettings(
        KAFKA_BOOTSTRAP_SERVERS=stack_env["KAFKA_BOOTSTRAP_SERVERS"], PINTEREST_TOPIC_PREFIX="test-absent-lib"
    )
    with pytest.raises(SeedError, match=r"test-absent-lib\.pin, test-absent-lib\.geo, test-absent-lib\.user"):
        seed_kafka(date(2026, 11, 20), date(2026, 11, 20), 1, settings=settings)


def test_seed_kafka_refuses_a_day_the_topics_retention_would_delete(stack_env: dict[str, str]) -> None:
    """Kafka deletes records by their timestamp: a day older than retention.ms would vanish within minutes."""
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    two_days_ms = 2 * 86_400_000
    with isolated_topics(bootstrap, f"test-retention-{uuid.uuid4().hex[:8]}", retention_ms=two_days_ms) as prefix:
        settings = PlatformSettings(KAFKA_BOOTSTRAP_SERVERS=bootstrap, PINTEREST_TOPIC_PREFIX=prefix)
        today = datetime.now(UTC).date()
        old_day = today - timedelta(days=5)
        with pytest.raises(SeedError) as refused:
            seed_kafka(old_day, today - timedelta(days=1), 2, settings=settings)
        message = str(refused.value)
        assert f"topic {prefix}.pin keeps records for retention.ms={two_days_ms} (2 days)" in message
        assert f"the records of {old_day}" in message
        assert f"seed from {today - timedelta(days=1)} on" in message
        assert sum(len(read_all(bootstrap, f"{prefix}.{entity}")) for entity in ENTITIES) == 0  # nothing written

        yesterday = today - timedelta(days=1)
        report = seed_kafka(yesterday, yesterday, 2, settings=settings)  # within the retention: seeded
        assert report.counts == {yesterday: dict.fromkeys(ENTITIES, 2)}


def test_post_names_the_url_when_no_api_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result, took_s = emulator("post", "--url", url, "--count", "1")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"the API does not answer at {url}" in line
    assert "make up" in line
    assert took_s < PROMPTLY_S


@contextlib.contextmanager
def own_api(stack_env: dict[str, str], log_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[RunningApi]:
    """An API of its own on topics of its own (so records counted here are this test's only)."""
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    with (
        isolated_topics(bootstrap, f"test-emu-{uuid.uuid4().hex[:10]}") as prefix,
        running_api(stack_env, prefix, log_dir / "api.log", extra_env) as url,
    ):
        yield RunningApi(url=url, prefix=prefix, bootstrap=bootstrap, log_path=log_dir / "api.log")


@contextlib.contextmanager
def started_emulator(*args: str) -> Iterator[subprocess.Popen[str]]:
    """The emulator CLI running for the block; killed afterwards if it still runs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "include.emulator", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for_line(process: subprocess.Popen[str], text: str) -> None:
    """Read the process's stderr until a line containing ``text`` (it prints that once it handles Ctrl-C)."""
    assert process.stderr is not None
    for line in process.stderr:
        if text in line:
            return
    pytest.fail(f"the emulator ended ({process.wait()}) without printing {text!r}: {process.stdout.read()}")


def per_entity(bootstrap: str, prefix: str) -> dict[str, int]:
    return {entity: len(read_all(bootstrap, f"{prefix}.{entity}")) for entity in ENTITIES}


def interrupted_count(process: subprocess.Popen[str], err: str, pattern: str) -> int:
    """The count an emulator stopped by Ctrl-C reports (``pattern``'s group): it exits 130, without a traceback."""
    assert process.returncode == 130, err
    assert "Traceback" not in err
    found = re.search(pattern, err)
    assert found, err
    return int(found.group(1))


def test_ctrl_c_lets_the_triples_in_flight_finish_and_summarises(stack_env: dict[str, str], tmp_path: Path) -> None:
    with own_api(stack_env, tmp_path) as api:
        with started_emulator("post", "--url", api.url, "--duration", "60", "--rate", "40", "--seed", "77") as process:
            wait_for_line(process, "--seed 77")
            time.sleep(2)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)
        triples = interrupted_count(process, err, r"interrupted after (\d+) triples \(seed 77\)")
        assert triples > 0
        assert "posted records" in out
        # every triple started was posted whole: as many pins as geos as users, and as many as reported
        assert per_entity(api.bootstrap, api.prefix) == dict.fromkeys(ENTITIES, triples)


def test_ctrl_c_while_seeding_reports_what_kafka_acknowledged(stack_env: dict[str, str], kafka_topics: str) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    with started_emulator(
        *("seed-kafka", "--per-day", "2000000", "--from", "2026-11-20", "--to", "2026-11-21"),
        *("--seed", "5", "--topic-prefix", kafka_topics),
    ) as process:
        wait_for_line(process, "--seed 5")
        time.sleep(1.5)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    acknowledged = interrupted_count(process, err, r"interrupted: Kafka acknowledged (\d+) records \(seed 5\)")
    assert 0 < acknowledged < 2 * 2_000_000 * 3
    assert sum(per_entity(bootstrap, kafka_topics).values()) == acknowledged


def test_post_names_what_the_api_is_not_ready_for(stack_env: dict[str, str], tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"
    env = {"KAFKA_BOOTSTRAP_SERVERS": closed}
    with running_api(stack_env, "test-unready", tmp_path / "api.log", env, until="/health") as url:
        result, took_s = emulator("post", "--url", url, "--count", "5")
        detail = httpx.get(f"{url}/ready", timeout=10).json()["detail"]
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"the API at {url} is not ready for records" in line
    assert detail in line
    assert took_s < PROMPTLY_S


def test_post_stops_soon_with_a_clear_error_when_the_api_dies(stack_env: dict[str, str], tmp_path: Path) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    with isolated_topics(bootstrap, f"test-emu-{uuid.uuid4().hex[:10]}") as prefix:
        api_process, url = start_api(stack_env, prefix, tmp_path / "api.log")
        try:
            with started_emulator("post", "--url", url, "--duration", "300", "--concurrency", "4") as process:
                wait_for_line(process, "--seed")
                time.sleep(1)
                api_process.kill()
                killed = time.monotonic()
                out, err = process.communicate(timeout=60)
                took_s = time.monotonic() - killed
        finally:
            stop_api(api_process)
    assert process.returncode == 1, err
    assert f"the API at {url} stopped answering: no connection for" in err.strip().splitlines()[-1]
    assert took_s < 25  # 10 s without a connection, the retries' last backoff and a cold start's margin
    assert "Traceback" not in err
    assert "answers: " in out, out
    answers = dict(re.findall(r"(\w+): (\d+)", out.split("answers: ")[-1]))
    assert 1 <= int(answers["ConnectError"]) < 200, answers  # it retried, backing off instead of spinning


def test_a_401_stops_posting_at_once_and_says_to_set_api_key(stack_env: dict[str, str], tmp_path: Path) -> None:
    with own_api(stack_env, tmp_path, {"API_KEY": "s3cret-key"}) as api:
        refused, _ = emulator("post", "--url", api.url, "--count", "200", "--concurrency", "4", env={"API_KEY": ""})
        wrong, _ = emulator("post", "--url", api.url, "--count", "200", env={"API_KEY": "not-it"})
        keyed, _ = emulator("post", "--url", api.url, "--count", "20", env={"API_KEY": "s3cret-key"})
        stored = per_entity(api.bootstrap, api.prefix)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == "the API requires X-API-Key: set API_KEY"
    assert int(re.search(r"401: (\d+)", refused.stdout).group(1)) <= 4  # one per connection at most
    assert wrong.returncode == 1
    assert "refused the X-API-Key sent from API_KEY" in wrong.stderr.strip().splitlines()[-1]
    assert keyed.returncode == 0, keyed.stderr
    assert stored == dict.fromkeys(ENTITIES, 20)  # only the keyed run's records


def test_a_rate_that_is_not_reached_is_said_on_stderr(stack_env: dict[str, str], tmp_path: Path) -> None:
    with own_api(stack_env, tmp_path) as api:
        fast, _ = emulator("post", "--url", api.url, "--count", "60", "--rate", "1000000")
        paced, _ = emulator("post", "--url", api.url, "--count", "30", "--rate", "10")
    assert fast.returncode == 0, fast.stderr
    missed = re.search(r"rate 1000000 triples/s not reached: ([\d.]+) triples/s", fast.stderr)
    assert missed, fast.stderr
    assert float(missed.group(1)) < 950_000
    assert paced.returncode == 0, paced.stderr
    assert "not reached" not in paced.stderr
    reached = re.search(r"30 triples in ([\d.]+) s: ([\d.]+) triples/s", paced.stdout)
    assert reached, paced.stdout
    assert float(reached.group(2)) == pytest.approx(30 / float(reached.group(1)), rel=0.05)
    assert float(reached.group(2)) >= 9.5


def test_a_retention_refusal_is_the_only_output_of_seed_kafka(stack_env: dict[str, str]) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    today = datetime.now(UTC).date()
    old_day = today - timedelta(days=5)
    with isolated_topics(bootstrap, f"test-retention-{uuid.uuid4().hex[:8]}", retention_ms=2 * 86_400_000) as prefix:
        result, took_s = emulator(
            *("seed-kafka", "--per-day", "3", "--from", str(old_day), "--to", str(today - timedelta(days=1))),
            *("--topic-prefix", prefix),
        )
    assert result.returncode == 1
    assert f"the records of {old_day}" in one_line(result.stderr)  # no progress bar before it
    assert took_s < PROMPTLY_S


def test_topics_that_stamp_records_themselves_are_refused_before_anything_is_seeded(stack_env: dict[str, str]) -> None:
    """With LogAppendTime every seeded record would carry today's time: the past days would be empty."""
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    stamped = {"message.timestamp.type": "LogAppendTime"}
    with isolated_topics(bootstrap, f"test-stamped-{uuid.uuid4().hex[:8]}", configs=stamped) as prefix:
        settings = PlatformSettings(KAFKA_BOOTSTRAP_SERVERS=bootstrap, PINTEREST_TOPIC_PREFIX=prefix)
        with pytest.raises(SeedError, match=rf"topic {prefix}\.pin has message\.timestamp\.type=LogAppendTime"):
            seed_kafka(yesterday, yesterday, 2, settings=settings)
        assert sum(len(read_all(bootstrap, f"{prefix}.{entity}")) for entity in ENTITIES) == 0


def test_kafka_failing_mid_seed_is_a_seed_error_saying_how_far_it_got(
    stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A producer whose third send times out (Kafka went away after the checks): one line, not a traceback."""

    class FailingProducer:
        def __init__(self, **_config: object) -> None:
            self.sent = 0

        def send(self, *_args: object, **_kwargs: object) -> SimpleNamespace:
            self.sent += 1
            if self.sent == 3:
                raise KafkaTimeoutError("Failed to update metadata after 60.0 secs.")
            return SimpleNamespace(add_callback=lambda count: count(None), add_errback=lambda _failed: None)

        def flush(self) -> None:
            raise AssertionError("not reached: the third send failed")

        def close(self) -> None:
            pass

    monkeypatch.setattr(include.emulator.seed, "KafkaProducer", FailingProducer)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    with pytest.raises(SeedError) as failed:
        seed_kafka(yesterday, yesterday, 5, settings=PlatformSettings.model_validate(stack_env))
    message = str(failed.value)
    assert f"Kafka at {stack_env['KAFKA_BOOTSTRAP_SERVERS']} failed while seeding (KafkaTimeoutError(" in message
    assert message.endswith("; 2 records were acknowledged")


@contextlib.contextmanager
def fake_api(answer: Callable[[str], tuple[int, dict[str, str]]]) -> Iterator[str]:
    """An HTTP server that is healthy and ready, and answers each POST to a path as ``answer(path)`` says (status,
    headers): the API's side of a client test; yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._reply(200, {})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self._reply(*answer(self.path))

        def _reply(self, status: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in {**headers, "content-type": "application/json", "content-length": "2"}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_api_answering_only_503_stops_posting_soon_naming_it() -> None:
    """Each record was tried 5 times whatever the API answered: --count 100 against it took minutes."""
    with fake_api(lambda _path: (503, {"retry-after": "1"})) as url:
        result, took_s = emulator("post", "--url", url, "--count", "100", "--concurrency", "2")
    assert result.returncode == 1
    assert f"the API at {url} answered only 503 for" in result.stderr.strip().splitlines()[-1]
    assert took_s < PROMPTLY_S
    assert "(0 with all three records accepted)" in result.stdout, result.stdout


def test_ctrl_c_while_records_wait_to_be_retried_ends_at_once() -> None:
    """A record retried after a 503's Retry-After of 30 s kept Ctrl-C waiting for minutes."""
    with (
        fake_api(lambda _path: (503, {"retry-after": "30"})) as url,
        started_emulator("post", "--url", url, "--count", "5", "--concurrency", "2", "--seed", "3") as process,
    ):
        wait_for_line(process, "--seed 3")
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        _, err = process.communicate(timeout=60)
        took_s = time.monotonic() - interrupted
    interrupted_count(process, err, r"interrupted after (\d+) triples \(seed 3\)")
    assert took_s < 10


def test_triples_count_only_when_all_three_records_are_accepted_and_a_slow_rate_keeps_the_duration() -> None:
    def refuse_geo(path: str) -> tuple[int, dict[str, str]]:
        return (422, {}) if path == "/geo/" else (201, {})

    with fake_api(refuse_geo) as url:
        refused, _ = emulator("post", "--url", url, "--count", "4", "--rate", "2")
    assert re.search(r"^4 triples in .* \(0 with all three records accepted\)$", refused.stdout, re.M), refused.stdout
    assert "answers: 201: 8, 422: 4" in refused.stdout
    assert "not reached" not in refused.stderr  # the pace counts triples posted, accepted or not
    with fake_api(lambda _path: (201, {})) as url:
        slow, took_s = emulator("post", "--url", url, "--duration", "2", "--rate", "0.1")
    assert slow.returncode == 0, slow.stderr
    assert re.search(r"^1 triples in .* \(1 with all", slow.stdout, re.MULTILINE), slow.stdout  # due at once
    assert took_s < 8  # the next one was due after 10 s: the duration ended first
