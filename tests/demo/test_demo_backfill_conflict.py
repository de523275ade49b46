"""A backfill already running, a POST that times out, Airflow down: the demo waits or stops with one line, before
it writes anything (a fake api-server; nothing reaches the stack)."""

from __future__ import annotations

import socket
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

import demo.__main__ as demo
from devstack import airflow_client, paths
from devstack.airflow_client import AirflowError, BackfillConflict
from devstack.secrets import read_env_file
from include.days import midnight
from tests.demo.fake_airflow import DAG_ID, FakeAirflow, backfill, dag_run

FIRST, LAST = date(2026, 11, 23), date(2026, 11, 25)
SQLITE_LOCK_WAIT_S = 60  # `?timeout=60` of the stack's SQLite URL (devstack/environment.py)


def running(**extra) -> dict:
    return backfill(41, FIRST, LAST, datetime.now(UTC) - timedelta(minutes=3), **extra)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_second_backfill_is_refused_with_the_running_ones_id_and_where_to_cancel_it():
    fake = FakeAirflow(backfills=[running()])
    refusal = {"detail": f"There is already a running backfill for dag {DAG_ID}"}
    fake.create_backfill = lambda _: httpx.Response(409, json=refusal)

    with pytest.raises(BackfillConflict) as refused:
        fake.client().backfill(DAG_ID, midnight(FIRST), midnight(LAST))

    assert "backfill 41 of pinterest_daily (2026-11-23..2026-11-25)" in str(refused.value)
    assert "cancel it on http://airflow.test/dags/pinterest_daily" in str(refused.value)


def test_what_each_refusal_by_sqlite_left_is_removed_the_last_time_too(monkeypatch):
    discarded: list[datetime] = []
    monkeypatch.setattr(airflow_client, "discard_from_outside", lambda dag_id, since: discarded.append(since) or "")
    monkeypatch.setattr(airflow_client.time, "sleep", lambda _: None)
    fake = FakeAirflow()
    locked = {"detail": "(sqlite3.OperationalError) database is locked"}
    fake.create_backfill = lambda _: httpx.Response(503, json=locked)

    with pytest.raises(AirflowError, match="POST /backfills -> 503"):
        fake.client().backfill(DAG_ID, midnight(FIRST), midnight(LAST))

    attempts = [r for r in fake.requests if r.url.path == "/api/v2/backfills" and r.method == "POST"]
    assert len(discarded) == len(attempts) == airflow_client.BACKFILL_ATTEMPTS


def test_a_backfill_the_server_created_after_the_client_gave_up_is_taken_not_asked_for_again():
    fake = FakeAirflow(backfills=[backfill(40, FIRST, LAST, datetime(2026, 11, 20, tzinfo=UTC), completed_at="x")])

    def slow_create(request: httpx.Request) -> httpx.Response:
        fake.backfills.append(backfill(45, FIRST, LAST, datetime.now(UTC)))  # the server goes on with the write
        raise httpx.ReadTimeout("timed out", request=request)

    fake.create_backfill = slow_create

    assert fake.client().backfill(DAG_ID, midnight(FIRST), midnight(LAST)) == 45
    assert [r.url.path for r in fake.requests if r.method == "POST"] == ["/auth/token", "/api/v2/backfills"]


def test_a_timed_out_request_is_not_answered_with_an_older_backfill_that_still_runs():
    fake = FakeAirflow(backfills=[running()])  # created 3 minutes before the request, not finished

    def slow_create(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)  # and the server created nothing

    fake.create_backfill = slow_create

    with pytest.raises(httpx.ReadTimeout):
        fake.client().backfill(DAG_ID, midnight(FIRST), midnight(LAST))
    assert [r.url.path for r in fake.requests if r.method == "POST"] == ["/auth/token", "/api/v2/backfills"]


def test_writes_wait_longer_than_the_servers_sqlite_lock():
    fake = FakeAirflow()
    fake.create_backfill = lambda _: httpx.Response(200, json=backfill(46, FIRST, LAST, datetime.now(UTC)))
    client = fake.client()
    client.backfill(DAG_ID, midnight(FIRST), midnight(LAST))
    client.unpause(DAG_ID)

    for write in [r for r in fake.requests if r.url.path.startswith("/api/v2/")]:
        assert write.extensions["timeout"]["read"] > 2 * SQLITE_LOCK_WAIT_S, (write.method, write.url.path)


def test_the_demo_waits_for_a_running_backfill_and_shows_its_days(capsys):
    def finish(fake: FakeAirflow) -> None:
        if fake.lists == 3:
            for run in fake.runs:
                run["state"] = "success"
            fake.backfills[0]["completed_at"] = datetime.now(UTC).isoformat()

    runs = [dag_run(f"backfill__{d}", "backfill", "running" if d == FIRST else "queued", d, d, datetime.now(UTC))
            for d in (FIRST, FIRST + timedelta(days=1), LAST)]  # fmt: skip
    fake = FakeAirflow(runs=runs, backfills=[running()], on_list=finish)

    demo.wait_for_running_backfill(fake.client())

    assert fake.backfills[0]["completed_at"] and not fake.paused
    out = capsys.readouterr().out
    assert "backfill 41 of pinterest_daily (2026-11-23..2026-11-25) is still running" in out
    assert "2026-11-23 running · 2026-11-24 queued · 2026-11-25 queued" in out
    assert "2026-11-23 success · 2026-11-24 success · 2026-11-25 success" in out


def test_a_paused_backfill_is_not_waited_for_but_explained():
    fake = FakeAirflow(backfills=[running(is_paused=True)])

    with pytest.raises(AirflowError, match=r"backfill 41 .* is paused: resume or cancel it on http://airflow.test/"):
        demo.wait_for_running_backfill(fake.client())
    assert fake.lists == 0 and fake.paused  # neither waited nor unpaused


def test_a_finished_backfill_is_no_reason_to_wait():
    fake = FakeAirflow(backfills=[running(completed_at=datetime.now(UTC).isoformat())])

    demo.wait_for_running_backfill(fake.client())

    assert fake.lists == 0


def stack_env_nowhere(monkeypatch) -> dict[str, str]:
    """The stack's settings with Kafka, the API and Airflow on closed ports, in the file and the shell alike."""
    env = {**read_env_file(paths.STACK_ENV_FILE), "AIRFLOW_USERNAME": "admin", "AIRFLOW_PASSWORD": "x"}
    nowhere = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}", "API_URL": f"http://127.0.0.1:{closed_port()}",
               "AIRFLOW_API_URL": f"http://127.0.0.1:{closed_port()}"}  # fmt: skip
    for name, value in nowhere.items():
        env[name] = value
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(demo, "read_env_file", lambda _: env)
    return env


def test_airflow_down_stops_the_demo_with_one_line_before_it_seeds(monkeypatch, capsys):
    env = stack_env_nowhere(monkeypatch)

    assert demo.main(["--history-days", "1"]) == 1

    err = capsys.readouterr().err.strip()
    assert err.startswith(f"Airflow does not answer at {env['AIRFLOW_API_URL']}") and "make up" in err
    assert "\n" not in err and "Traceback" not in err


def test_a_paused_backfill_stops_the_demo_before_it_seeds(monkeypatch, capsys):
    stack_env_nowhere(monkeypatch)
    fake = FakeAirflow(backfills=[running(is_paused=True)])
    monkeypatch.setattr(demo, "AirflowClient", SimpleNamespace(from_env=lambda _: fake.client()))
    monkeypatch.setattr(demo, "seed_with_progress", lambda *_: pytest.fail("seeded while a backfill blocks the demo"))

    assert demo.main(["--history-days", "1"]) == 1

    err = capsys.readouterr().err
    assert "backfill 41 of pinterest_daily" in err and "is paused" in err
    assert not [r for r in fake.requests if r.method != "GET" and r.url.path != "/auth/token"]
