"""What a backfill create refused by SQLite leaves behind is removed with its runs, on the stack's real Airflow."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from devstack.airflow_client import AirflowClient
from devstack.orphan_backfills import discard_from_outside

DAG_ID = "pinterest_daily"


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _runs_between(client: AirflowClient, first: date, last: date) -> list[dict]:
    window = {"logical_date_gte": _midnight(first).isoformat(), "logical_date_lte": _midnight(last).isoformat()}
    return client._call("GET", f"/dags/{DAG_ID}/dagRuns", params=window)["dag_runs"]


def test_the_dags_active_backfills_created_since_go_with_their_runs_and_others_stay(stack_env, scratch_bucket):
    client = AirflowClient.from_env(stack_env)
    client.wait_for_dag(DAG_ID)
    client.pause(DAG_ID)  # the backfills' runs stay queued: nothing runs while the test looks at them
    try:
        rng = random.Random(uuid.uuid4().int)
        while True:  # two days of 2026 no run has drained yet
            first = date(2026, 1, 2) + timedelta(days=rng.randrange(0, 300))
            if not _runs_between(client, first, first + timedelta(days=1)):
                break
        second = first + timedelta(days=1)
        conf = {"lake_bucket": scratch_bucket}
        since = datetime.now(UTC)
        finished = client.backfill(DAG_ID, _midnight(first), _midnight(first), conf)
        client._call("PUT", f"/backfills/{finished}/cancel")  # completed, no longer active: it stays
        orphan = client.backfill(DAG_ID, _midnight(second), _midnight(second), conf)
        assert _runs_between(client, second, second), "the backfill created no run"

        removed = discard_from_outside(DAG_ID, since)

        assert removed == str(orphan)
        with pytest.raises(RuntimeError, match="404"):
            client._call("GET", f"/backfills/{orphan}")
        assert _runs_between(client, second, second) == []
        assert client._call("GET", f"/backfills/{finished}")["completed_at"] is not None
        assert discard_from_outside(DAG_ID, since) == ""  # nothing left to remove
    finally:
        client.unpause(DAG_ID)
        client.close()
