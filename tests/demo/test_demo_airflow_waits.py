"""How the demo's Airflow client finds, waits for and judges the runs of backfilled days (a fake api-server)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from devstack import airflow_client
from devstack.airflow_client import (
    AirflowClient,
    AirflowPaused,
    AirflowRunFailed,
    AirflowUnhealthy,
    runs_of_days,
    wait_budget,
)
from tests.demo.fake_airflow import DAG_ID, HEALTHY, FakeAirflow, backfill, dag_run

DAYS = [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)]
TODAY = date(2026, 11, 26)
CREATED = datetime(2026, 11, 26, 9, 24, 34, tzinfo=UTC)  # when the demo's backfill was created
BACKFILL = backfill(42, DAYS[0], DAYS[-1], CREATED)


def running_demo(**state) -> FakeAirflow:
    """Airflow as ``demo.run_days`` leaves it before it waits: the DAG unpaused, the demo's backfill running."""
    return FakeAirflow(paused=False, backfills=[dict(BACKFILL)], **state)


def at(hour: int, minute: int = 0, day: date = TODAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def day_runs(state: str = "success") -> list[dict]:
    """The backfill's runs of DAYS, as it created or reran them (queued right after its creation)."""
    return [
        dag_run(f"backfill__{day + timedelta(days=1)}T00:00:00+00:00", "backfill", state, day, day,
                CREATED + timedelta(seconds=1), run_after=day + timedelta(days=1))
        for day in DAYS
    ]  # fmt: skip


def failing_test_run() -> dict:
    """What tests/dags leaves: a manual run over yesterday, triggered today (logical date "now"), failed on purpose."""
    return dag_run("test-conf-210e39ea", "manual", "failed", at(9, 43), DAYS[-1], at(9, 43))


def test_a_manual_run_over_a_backfilled_day_is_not_taken_for_that_days_run():
    runs = [*day_runs(), failing_test_run()]

    chosen = runs_of_days(runs, DAYS)

    assert [chosen[day]["dag_run_id"] for day in DAYS] == [r["dag_run_id"] for r in runs[:3]]


def test_runs_past_the_first_page_are_found():
    old = [dag_run(f"old-{i}", "backfill", "success", date(2026, 1, 2) + timedelta(days=i),
                   date(2026, 1, 2) + timedelta(days=i), at(1)) for i in range(230)]  # fmt: skip
    fake = running_demo(runs=[*old, *day_runs()])

    listed = fake.client().runs(DAG_ID)

    assert [r["dag_run_id"] for r in listed] == [r["dag_run_id"] for r in fake.runs]


def test_the_wait_ends_on_the_backfills_runs_even_after_a_failed_manual_run_of_the_same_day():
    fake = running_demo(runs=[*day_runs(), failing_test_run()])

    chosen = fake.client().wait_for_days(DAG_ID, DAYS, BACKFILL, lambda _: None)

    assert {day: run["state"] for day, run in chosen.items()} == dict.fromkeys(DAYS, "success")


def test_a_failed_day_is_reported_with_its_failed_tasks():
    runs = day_runs()
    runs[1]["state"] = "failed"
    states = {"wait_for_late_records": "success", "drain.drain_pin": "success", "quality_gate": "success",
              "spark_clean": "success", "spark_analytics": "failed"}  # fmt: skip
    tis = [{"task_id": task, "state": state} for task, state in states.items()]
    fake = running_demo(runs=runs, task_instances={runs[1]["dag_run_id"]: tis})

    with pytest.raises(AirflowRunFailed) as failed:
        fake.client().wait_for_days(DAG_ID, DAYS, BACKFILL, lambda _: None)

    message = str(failed.value)
    assert runs[1]["dag_run_id"] in message and "spark_analytics" in message
    assert "spark_clean" not in message and runs[0]["dag_run_id"] not in message


def test_a_run_holding_a_days_logical_date_but_draining_another_day_is_refused():
    runs = day_runs()
    runs[2]["data_interval_start"] = "2026-11-24T00:00:00Z"  # e.g. a REST run given the next midnight as logical date
    fake = running_demo(runs=runs)

    with pytest.raises(AirflowRunFailed) as refused:
        fake.client().wait_for_days(DAG_ID, DAYS, BACKFILL, lambda _: None)

    assert f"{runs[2]['dag_run_id']} holds the logical date of 2026-11-25 but drains 2026-11-24" in str(refused.value)


def test_progress_is_reported_each_time_a_state_changes_and_only_then():
    script = [("queued",) * 3, ("running", "queued", "queued"), ("running", "queued", "queued"),
              ("success", "running", "queued"), ("success", "running", "queued"), ("success", "success", "running"),
              ("success", "success", "success")]  # fmt: skip

    def advance(fake: FakeAirflow) -> None:
        for run, state in zip(fake.runs, script[min(fake.lists, len(script)) - 1], strict=True):
            run["state"] = state

    fake = running_demo(runs=day_runs("queued"), on_list=advance)
    lines: list[str] = []

    fake.client().wait_for_days(DAG_ID, DAYS, BACKFILL, lines.append)

    assert len(lines) == 5  # the distinct steps of the script
    for line, states in zip(lines, dict.fromkeys(script), strict=True):
        assert line == " · ".join(f"{day} {state}" for day, state in zip(DAYS, states, strict=True))


def test_a_run_left_in_flight_by_the_backfill_is_waited_for_and_named():
    runs = day_runs()
    runs[2] = dag_run("scheduled__2026-11-26T00:00:00+00:00", "scheduled", "success", DAYS[2], DAYS[2],
                      CREATED - timedelta(minutes=5))  # fmt: skip
    lines: list[str] = []

    chosen = running_demo(runs=runs).client().wait_for_days(DAG_ID, DAYS, BACKFILL, lines.append)

    assert chosen[DAYS[2]]["dag_run_id"] == runs[2]["dag_run_id"]
    assert f"{runs[2]['dag_run_id']}, in flight before the backfill" in lines[-1]
    assert lines[-1].count("in flight") == 1


@pytest.fixture
def short_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wait of a few seconds instead of wait_budget(3) (40 minutes): a wait that ignores the health check fails
    with TimeoutError, soon."""
    monkeypatch.setattr(airflow_client, "DAY_BUDGET", 2.5)


def test_a_scheduler_that_stays_unhealthy_stops_the_wait(short_budget):
    down = {**HEALTHY, "scheduler": {"status": "unhealthy", "latest_scheduler_heartbeat": "2026-11-26T09:30:00+00:00"}}
    fake = running_demo(runs=day_runs("queued"), health=down)

    with pytest.raises(AirflowUnhealthy, match=r"scheduler unhealthy \(last heartbeat 2026-11-26T09:30:00"):
        fake.client(health_grace_s=0.05, poll_s=0.01).wait_for_days(DAG_ID, DAYS, BACKFILL, lambda _: None)


def test_a_short_health_blip_does_not_stop_the_wait():
    down = {**HEALTHY, "scheduler": {"status": "unhealthy", "latest_scheduler_heartbeat": None}}

    def recover(fake: FakeAirflow) -> None:
        fake.health = down if fake.lists < 3 else HEALTHY
        if fake.lists >= 4:
            for run in fake.runs:
                run["state"] = "success"

    fake = running_demo(runs=day_runs("queued"), on_list=recover)

    assert len(fake.client(health_grace_s=60).wait_for_days(DAG_ID, DAYS, BACKFILL, lambda _: None)) == 3


def test_an_api_server_that_stops_answering_stops_the_wait(short_budget):
    fake = running_demo(runs=day_runs("running"))
    client = fake.client(health_grace_s=0.05, poll_s=0.01)
    fake.answering = False  # logged in; then the api-server goes away

    with pytest.raises(AirflowUnhealthy, match="does not answer"):
        client.wait_for_days(DAG_ID, DAYS, BACKFILL, lambda _: None)


def test_the_wait_grows_with_the_number_of_days():
    # a day whose analytics wait for an earlier day retries after 1, 2 and 4 minutes (the DAG's default_args),
    # on top of a few minutes of work (`make demo` does three days in about 3.5 minutes)
    worst_day = (1 + 2 + 4 + 3) * 60
    for days in (1, 3, 10, 30):
        assert wait_budget(days) >= days * worst_day
    assert wait_budget(30) - wait_budget(10) >= 20 * worst_day


def test_a_run_in_flight_before_the_backfill_with_another_conf_is_not_taken_for_the_demos():
    runs = day_runs()
    runs[2] = dag_run("test-lookup-1", "manual", "success", DAYS[2], DAYS[2], CREATED - timedelta(minutes=5))
    runs[2]["conf"] = {"lake_bucket": "scratch-7f1c"}  # e.g. a test's run at the day's midnight: another lake

    with pytest.raises(AirflowRunFailed) as refused:
        running_demo(runs=runs).client().wait_for_days(DAG_ID, DAYS, BACKFILL, lambda _: None)

    message = str(refused.value)
    assert "run test-lookup-1 of 2026-11-25, in flight before the backfill, ran with conf" in message
    assert "{'lake_bucket': 'scratch-7f1c'} instead of {}" in message
    assert runs[0]["dag_run_id"] not in message


PAUSED_DAG = "the DAG pinterest_daily is paused: unpause it on http://airflow.test/dags/pinterest_daily"


def test_a_paused_dag_is_named_at_once_and_stops_the_wait_once_the_pause_lasts(short_budget):
    fake = running_demo(runs=day_runs("queued"))
    fake.paused = True  # e.g. paused in the UI after the demo unpaused it
    lines: list[str] = []

    with pytest.raises(AirflowPaused, match=rf"no run starts: {PAUSED_DAG} \(\d+s so far\)"):
        fake.client(health_grace_s=0.05, poll_s=0.01).wait_for_days(DAG_ID, DAYS, BACKFILL, lines.append)

    assert lines == [f"{' · '.join(f'{day} queued' for day in DAYS)} ({PAUSED_DAG})"]


def test_a_paused_backfill_stops_the_wait_naming_how_to_resume_it(short_budget):
    fake = running_demo(runs=[*day_runs("success")[:1], *day_runs("queued")[1:]])
    fake.backfills[0]["is_paused"] = True

    with pytest.raises(AirflowPaused, match=r"backfill 42 is paused: resume or cancel it on http://airflow\.test/"):
        fake.client(health_grace_s=0.05, poll_s=0.01).wait_for_days(DAG_ID, DAYS, BACKFILL, lambda _: None)


def test_a_pause_that_ends_within_the_grace_is_shown_and_the_wait_goes_on():
    def unpause_later(fake: FakeAirflow) -> None:
        fake.paused = fake.lists < 3
        if fake.lists >= 4:
            for run in fake.runs:
                run["state"] = "success"

    fake = running_demo(runs=day_runs("queued"), on_list=unpause_later)
    fake.paused = True
    lines: list[str] = []

    assert len(fake.client().wait_for_days(DAG_ID, DAYS, BACKFILL, lines.append)) == 3
    assert [PAUSED_DAG in line for line in lines] == [True, False, False]


def flaky(fake: FakeAirflow, statuses: list[int]) -> AirflowClient:
    """A client of ``fake`` whose listings of runs first fail with ``statuses``, one per listing, then are answered."""
    left = iter(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/dagRuns") and (status := next(left, None)):
            return httpx.Response(status, json={"detail": "(sqlite3.OperationalError) database is locked"})
        return fake.handle(request)

    return AirflowClient("http://airflow.test", "admin", "secret", transport=httpx.MockTransport(handle), poll_s=0.0)


def test_a_server_error_while_polling_does_not_end_the_wait():
    assert len(flaky(running_demo(runs=day_runs()), [500, 503]).wait_for_days(DAG_ID, DAYS, BACKFILL, print)) == 3


def test_an_api_server_that_keeps_failing_stops_the_wait(short_budget):
    client = flaky(running_demo(runs=day_runs()), [500] * 10_000)
    client.health_grace_s, client.poll_s = 0.05, 0.01

    with pytest.raises(AirflowUnhealthy, match=r"fails \(Airflow GET /dags/pinterest_daily/dagRuns -> 500"):
        client.wait_for_days(DAG_ID, DAYS, BACKFILL, lambda _: None)
