"""An in-memory stand-in for the parts of Airflow 3.3's REST API the demo's client uses, behind httpx.MockTransport.

It answers as the api-server does: runs ordered by id unless ``order_by`` says otherwise, at most 100 per page,
``logical_date_gte``/``_lte`` inclusive, one backfill per DAG at a time (409 otherwise).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import httpx

from devstack.airflow_client import AirflowClient

DAG_ID = "pinterest_daily"
HEALTHY = {
    "metadatabase": {"status": "healthy"},
    "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": "2026-11-26T11:06:37.323509+00:00"},
    "triggerer": {"status": "healthy", "latest_triggerer_heartbeat": "2026-11-26T11:06:36.484176+00:00"},
    "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": "2026-11-26T11:06:36.086119+00:00"},
}


def iso(value: datetime | date) -> str:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), UTC)
    return value.isoformat().replace("+00:00", "Z")


def dag_run(
    run_id: str,
    run_type: str,
    state: str,
    logical_date: datetime | date | None,
    interval_start: date | None,
    queued_at: datetime,
    run_after: datetime | date | None = None,
) -> dict[str, Any]:
    """A run as ``GET /api/v2/dags/{dag_id}/dagRuns`` returns it (no backfill id: the API has none)."""
    return {
        "dag_run_id": run_id,
        "dag_id": DAG_ID,
        "logical_date": iso(logical_date) if logical_date else None,
        "queued_at": iso(queued_at),
        "start_date": None if state == "queued" else iso(queued_at),
        "end_date": None,
        "duration": None,
        "data_interval_start": iso(interval_start) if interval_start else None,
        "data_interval_end": None,
        "run_after": iso(run_after or queued_at),
        "last_scheduling_decision": None,
        "run_type": run_type,
        "state": state,
        "triggered_by": "rest_api",
        "triggering_user_name": "admin",
        "conf": {},
        "note": None,
        "dag_versions": [],
        "bundle_version": None,
        "dag_display_name": DAG_ID,
        "partition_key": None,
        "partition_date": None,
    }


def backfill(backfill_id: int, first: date, last: date, created_at: datetime, **extra: Any) -> dict[str, Any]:
    """A backfill as ``GET /api/v2/backfills/{id}`` returns it."""
    return {
        "id": backfill_id,
        "dag_id": DAG_ID,
        "from_date": iso(first),
        "to_date": iso(last),
        "dag_run_conf": {},
        "is_paused": False,
        "reprocess_behavior": "completed",
        "max_active_runs": 1,
        "created_at": iso(created_at),
        "completed_at": None,
        "updated_at": iso(created_at),
        "dag_display_name": DAG_ID,
        **extra,
    }


@dataclass
class FakeAirflow:
    """Runs, backfills, task instances and health of one DAG; ``on_list`` runs before each listing of runs."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    backfills: list[dict[str, Any]] = field(default_factory=list)
    task_instances: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=lambda: HEALTHY)
    on_list: Callable[[FakeAirflow], None] = lambda _: None
    create_backfill: Callable[[httpx.Request], httpx.Response] | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    paused: bool = True
    answering: bool = True
    lists: int = 0

    def client(self, **settings: Any) -> AirflowClient:
        return AirflowClient("http://airflow.test", "admin", "secret", transport=httpx.MockTransport(self.handle),
                             **{"poll_s": 0.0, **settings})  # fmt: skip

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answering:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        path, query, method = request.url.path, request.url.params, request.method
        if path == "/auth/token":
            return httpx.Response(201, json={"access_token": "jwt"})
        if path == "/api/v2/monitor/health":
            return httpx.Response(200, json=self.health)
        if path == f"/api/v2/dags/{DAG_ID}":
            if method == "PATCH":
                self.paused = json.loads(request.content)["is_paused"]
            return httpx.Response(200, json={"dag_id": DAG_ID, "is_paused": self.paused})
        if path == f"/api/v2/dags/{DAG_ID}/dagRuns":
            self.lists += 1
            self.on_list(self)
            return httpx.Response(200, json=self._list_runs(query))
        if match := re.fullmatch(rf"/api/v2/dags/{DAG_ID}/dagRuns/([^/]+)(/taskInstances)?", path):
            run_id, tis = match.groups()
            if tis:
                found = self.task_instances.get(run_id, [])
                return httpx.Response(200, json={"task_instances": found, "total_entries": len(found)})
            self.on_list(self)
            return httpx.Response(200, json=next(r for r in self.runs if r["dag_run_id"] == run_id))
        if path == "/api/v2/backfills" and method == "POST":
            assert self.create_backfill, "unexpected backfill creation"
            return self.create_backfill(request)
        if path == "/api/v2/backfills":
            ordered = sorted(self.backfills, key=lambda b: b["id"], reverse=query.get("order_by") == "-id")
            page = ordered[: int(query.get("limit", 50))]
            return httpx.Response(200, json={"backfills": page, "total_entries": len(self.backfills)})
        if match := re.fullmatch(r"/api/v2/backfills/(\d+)", path):
            return httpx.Response(200, json=next(b for b in self.backfills if b["id"] == int(match[1])))
        return httpx.Response(404, json={"detail": "Not Found"})

    def _list_runs(self, query: httpx.QueryParams) -> dict[str, Any]:
        def within(run: dict[str, Any]) -> bool:
            logical = run["logical_date"] and datetime.fromisoformat(run["logical_date"])
            low, high = query.get("logical_date_gte"), query.get("logical_date_lte")
            if (low or high) and not logical:
                return False
            return (not low or logical >= datetime.fromisoformat(low)) and (
                not high or logical <= datetime.fromisoformat(high)
            )

        found = [run for run in self.runs if within(run)]
        if query.get("order_by", "id").startswith("-"):
            found.reverse()  # self.runs is in id order
        offset, limit = int(query.get("offset", 0)), min(int(query.get("limit", 50)), 100)
        return {"dag_runs": found[offset : offset + limit], "total_entries": len(found)}
