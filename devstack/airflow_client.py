"""A small client of Airflow's REST API (v2) for the demo and the tests: trigger, backfill, wait, explain failures."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from devstack.orphan_backfills import BACKFILL_ATTEMPTS, discard_from_outside

TERMINAL = {"success", "failed"}


class AirflowRunFailed(RuntimeError):
    """A DAG run ended in a state other than success."""


@dataclass
class AirflowClient:
    """Talks to the api-server with a JWT obtained from the simple auth manager's login."""

    base_url: str
    username: str
    password: str = field(repr=False)
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        token = self._http.post("/auth/token", json={"username": self.username, "password": self.password})
        token.raise_for_status()
        self._http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    @classmethod
    def from_env(cls, env: dict[str, str]) -> AirflowClient:
        return cls(env["AIRFLOW_API_URL"], env["AIRFLOW_USERNAME"], env["AIRFLOW_PASSWORD"])

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"/api/v2{path}", **kwargs)
        if response.is_error:
            raise RuntimeError(f"Airflow {method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 180.0) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` (new files are seen on its refresh interval)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._http.get(f"/api/v2/dags/{dag_id}").status_code == 200:
                return
            time.sleep(2)
        raise TimeoutError(f"DAG {dag_id} not parsed by Airflow within {timeout:.0f}s")

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        """Pause the DAG: its runs, backfills' included, stay queued."""
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def trigger(
        self, dag_id: str, start: datetime, end: datetime, conf: dict[str, Any] | None = None, run_id: str | None = None
    ) -> str:
        """Trigger a run over ``[start, end)`` the way the UI does (REST, logical date "now"); returns the run id.

        Airflow keeps one run per logical date, so the logical date is the trigger time and the
        data interval, which decides the lake partition, is given explicitly.
        """
        body: dict[str, Any] = {
            "logical_date": datetime.now(UTC).isoformat(),
            "data_interval_start": start.isoformat(),
            "data_interval_end": end.isoformat(),
            "conf": conf or {},
        }
        if run_id:
            body["dag_run_id"] = run_id
        return self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def backfill(
        self,
        dag_id: str,
        from_date: datetime,
        to_date: datetime,
        conf: dict[str, Any] | None = None,
        max_active_runs: int = 1,
    ) -> int:
        """Create a backfill over ``from_date..to_date`` (both inclusive); returns its id."""
        body = {
            "dag_id": dag_id,
            "from_date": from_date.isoformat(),
            "to_date": to_date.isoformat(),
            "dag_run_conf": conf or {},
            "reprocess_behavior": "completed",
            "max_active_runs": max_active_runs,
        }
        for attempt in range(1, BACKFILL_ATTEMPTS + 1):
            since = datetime.now(UTC) - timedelta(seconds=1)
            response = self._http.post("/api/v2/backfills", json=body)
            if not (response.status_code == 503 and "locked" in response.text and attempt < BACKFILL_ATTEMPTS):
                break
            # SQLite refused a write: remove what Airflow's best-effort clean-up of the partial backfill left
            discard_from_outside(dag_id, since)
            time.sleep(2 * attempt)
        if response.is_error:
            raise RuntimeError(f"Airflow POST /backfills -> {response.status_code}: {response.text[:500]}")
        return response.json()["id"]

    def wait_for_backfill(self, backfill_id: int, timeout: float = 1800.0) -> None:
        """Wait until the scheduler has finished every run of the backfill (its ``completed_at`` is set)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._call("GET", f"/backfills/{backfill_id}")["completed_at"]:
                return
            time.sleep(3)
        raise TimeoutError(f"backfill {backfill_id} not completed after {timeout:.0f}s")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900.0) -> dict[str, Any]:
        """Wait for a terminal state; raise with the failed tasks' names when it is not success."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(dag_id, run_id)
            if run["state"] in TERMINAL:
                if run["state"] != "success":
                    failed = [t["task_id"] for t in self.task_instances(dag_id, run_id) if t["state"] != "success"]
                    raise AirflowRunFailed(f"run {run_id} of {dag_id} ended {run['state']}; tasks not ok: {failed}")
                return run
            time.sleep(3)
        raise TimeoutError(f"run {run_id} of {dag_id} still {run['state']} after {timeout:.0f}s")

    def wait_for_runs_of_days(self, dag_id: str, days: set[date], timeout: float = 1800.0) -> list[dict[str, Any]]:
        """Wait until every day in ``days`` has a finished run (any run type); raise if one failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            latest: dict[date, dict[str, Any]] = {}
            for run in sorted(self.runs(dag_id), key=lambda r: r["run_after"]):
                if run.get("data_interval_start"):
                    latest[datetime.fromisoformat(run["data_interval_start"]).date()] = run
            chosen = [latest[d] for d in sorted(days) if d in latest]
            if len(chosen) == len(days) and all(r["state"] in TERMINAL for r in chosen):
                failed = [r["dag_run_id"] for r in chosen if r["state"] != "success"]
                if failed:
                    raise AirflowRunFailed(f"runs of {dag_id} failed: {failed}")
                return chosen
            time.sleep(3)
        raise TimeoutError(f"runs of {dag_id} for {sorted(days)} not finished after {timeout:.0f}s")

    def close(self) -> None:
        self._http.close()
