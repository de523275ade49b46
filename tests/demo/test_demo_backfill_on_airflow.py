"""The demo client's view of backfills, on the stack's real Airflow: which one is active and which runs it queued, a
second one refused with its id, a paused one explained (tests/demo/fake_airflow.py answers the same requests in the
unit tests)."""

from __future__ import annotations

import contextlib
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

import demo.__main__ as demo
from devstack import airflow_client
from devstack.airflow_client import AirflowClient, AirflowError, BackfillConflict
from tests.stack.test_orphan_backfills import DAG_ID, _midnight, _runs_between


def _two_unused_days(client: AirflowClient) -> date:
    """The first of two days of 2026 no run has drained yet (as tests/stack/test_orphan_backfills.py picks them)."""
    rng = random.Random(uuid.uuid4().int)
    while True:
        first = date(2026, 1, 2) + timedelta(days=rng.randrange(0, 300))
        if not _runs_between(client, first, first + timedelta(days=1)):
            return first


def test_the_active_backfill_is_found_a_second_is_refused_naming_it_and_a_paused_one_is_explained(
    stack_env, scratch_bucket, monkeypatch
):
    monkeypatch.setattr(airflow_client, "DAY_BUDGET", 2.0)  # a demo that waited for the paused backfill: seconds
    client = AirflowClient.from_env(stack_env)
    client.wait_for_dag(DAG_ID)
    was_paused = client._call("GET", f"/dags/{DAG_ID}")["is_paused"]
    client.pause(DAG_ID)  # the backfills' runs stay queued: nothing runs, and cancelling fails them
    made: list[int] = []
    try:
        assert client.active_backfill(DAG_ID) is None, "another backfill of the DAG runs: wait for it or cancel it"
        older = _two_unused_days(client)
        day = older + timedelta(days=1)
        conf = {"lake_bucket": scratch_bucket}  # were a run to start, it would write to the scratch bucket
        made.append(client.backfill(DAG_ID, _midnight(older), _midnight(older), conf))
        client._call("PUT", f"/backfills/{made[0]}/cancel")  # an older, finished backfill: not the active one
        before = datetime.now(UTC) - timedelta(seconds=1)  # what the client's timeout branch compares with
        made.append(client.backfill(DAG_ID, _midnight(day), _midnight(day), conf))
        after = datetime.now(UTC)
        ours = made[1]

        active = client.active_backfill(DAG_ID)
        assert active is not None and active["id"] == ours
        assert (active["dag_id"], active["from_date"][:10], active["to_date"][:10]) == (DAG_ID, str(day), str(day))
        assert (active["completed_at"], active["is_paused"]) == (None, False)
        assert before <= datetime.fromisoformat(active["created_at"]) <= after  # comparable with the client's clock
        assert client.get_backfill(ours)["id"] == ours
        # the demo tells its backfill's runs from runs in flight before it by their queue time (fake_airflow.py
        # stamps them so): the real scheduler's must agree, and the older backfill's run is not one of ours
        queued_by_ours, queued_before = _runs_between(client, day, day), _runs_between(client, older, older)
        assert queued_by_ours and all(airflow_client.of_backfill(run, active) for run in queued_by_ours), queued_by_ours
        assert queued_before and not any(airflow_client.of_backfill(run, active) for run in queued_before)

        with pytest.raises(BackfillConflict) as refused:
            made.append(client.backfill(DAG_ID, _midnight(day), _midnight(day), conf))
        assert f"backfill {ours} of {DAG_ID} ({day}..{day}) is still running" in str(refused.value)
        assert client.dag_url(DAG_ID) in str(refused.value)

        client._call("PUT", f"/backfills/{ours}/pause")
        assert client.active_backfill(DAG_ID)["is_paused"] is True
        url = client.dag_url(DAG_ID)  # what a wait names while runs stay queued
        paused_dag = f"the DAG {DAG_ID} is paused: unpause it on {url}"
        assert client.pauses(DAG_ID, ours) == [paused_dag, f"backfill {ours} is paused: resume or cancel it on {url}"]
        with pytest.raises(AirflowError, match=rf"backfill {ours} of {DAG_ID} \({day}\.\.{day}\) is paused"):
            demo.wait_for_running_backfill(client)
        assert client._call("GET", f"/dags/{DAG_ID}")["is_paused"] is True  # not unpaused to wait for it

        client._call("PUT", f"/backfills/{ours}/cancel")
        assert client.active_backfill(DAG_ID) is None
        assert client.get_backfill(ours)["completed_at"] is not None
        assert client.pauses(DAG_ID, ours) == [paused_dag]  # a cancelled backfill holds nothing back
        runs = _runs_between(client, older, day)
        assert runs, "the backfills created no run"
        assert {run["state"] for run in runs} == {"failed"}  # cancelled while queued: none queued or running
    finally:
        for backfill_id in made:
            with contextlib.suppress(AirflowError):  # already completed (409)
                client._call("PUT", f"/backfills/{backfill_id}/cancel")
        (client.pause if was_paused else client.unpause)(DAG_ID)
        client.close()
