"""A small client of Airflow's REST API (v2) for the demo and the tests: trigger, backfill, wait, explain failures."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import httpx

from devstack.orphan_backfills import BACKFILL_ATTEMPTS, discard_from_outside
from include.days import days_between, midnight

T = TypeVar("T")
TERMINAL = {"success", "failed"}
PAGE = 100
"""Runs asked for per request: the api-server's maximum page size by default (``[api] maximum_page_limit``)."""
NEEDED = ("metadatabase", "scheduler")
"""Health components without which no run moves."""
WRITE_TIMEOUT = 180.0
"""Seconds a write request may take: on SQLite each of its statements can wait 60 s for the lock
(devstack/environment.py), and a client that gives up first leaves the server to finish the write unseen."""
DAY_BUDGET = 600.0
"""Seconds allowed per day's run: a few minutes of work plus the retries of a task (1, 2 and 4 minutes apart)."""
HEALTH_HINT = "see `make status` and .stack/logs/airflow-scheduler.log (`make up` starts what is down)"


class AirflowError(RuntimeError):
    """Airflow refused a request, is not healthy, or a run did not succeed; the message says what to do."""


class AirflowRunFailed(AirflowError):
    """A DAG run ended in a state other than success."""


class AirflowServerError(AirflowError):
    """The api-server answered a request with a 5xx status: it may answer the next one."""


class AirflowUnhealthy(AirflowError):
    """Airflow's scheduler or metadata database is not healthy (or the api-server does not answer, or fails)."""


class AirflowPaused(AirflowError):
    """The DAG, or the backfill a wait is for, stays paused: no run of it starts."""


class BackfillConflict(AirflowError):
    """Another backfill of the DAG is running: Airflow allows one at a time per DAG."""


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _since(since: float | None, now: float, holds: bool) -> float | None:
    """When a condition that ``holds`` (or not) at ``now`` began: ``since`` while it lasts, None once it ends."""
    if not holds:
        return None
    return now if since is None else since


def wait_budget(days: int) -> float:
    """Seconds to wait for ``days`` runs done one after the other."""
    return DAY_BUDGET * (days + 1)


def runs_of_days(runs: Iterable[dict[str, Any]], days: Iterable[date]) -> dict[date, dict[str, Any]]:
    """Each day's run: the one whose logical date is the day's midnight, as for a scheduled or backfill run.

    Airflow keeps one run per logical date, and a backfill reruns that run. A manual run's logical date is its
    trigger time, so one that covers the same day never stands for it.
    """
    by_date = {_at(run["logical_date"]): run for run in runs if run["logical_date"]}
    return {day: by_date[midnight(day)] for day in days if midnight(day) in by_date}


def of_backfill(run: dict[str, Any], backfill: dict[str, Any]) -> bool:
    """Whether ``backfill`` (re)queued the run, rather than leaving it to finish as it was in flight at its creation.

    The REST API gives a run no backfill id; a backfill's runs are backfill runs queued once it exists.
    """
    queued = run["queued_at"]
    return run["run_type"] == "backfill" and queued is not None and _at(queued) >= _at(backfill["created_at"])


def progress(days: Iterable[date], runs: dict[date, dict[str, Any]], backfill: dict[str, Any] | None = None) -> str:
    """One line with the state of each day's run, e.g. ``2026-11-23 success · 2026-11-24 running``."""
    parts = []
    for day in days:
        run = runs.get(day)
        part = f"{day} {run['state'] if run else 'no run'}"
        if run and backfill and not of_backfill(run, backfill):
            part += f" ({run['dag_run_id']}, in flight before the backfill)"
        parts.append(part)
    return " · ".join(parts)


@dataclass
class AirflowClient:
    """Talks to the api-server with a JWT obtained from the simple auth manager's login."""

    base_url: str
    username: str
    password: str = field(repr=False)
    timeout: float = 30.0
    poll_s: float = 3.0
    health_grace_s: float = 120.0
    transport: httpx.BaseTransport | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout, transport=self.transport)
        token = self._http.post("/auth/token", json={"username": self.username, "password": self.password})
        if token.is_error:
            raise AirflowError(f"Airflow refused the login of {self.username!r} ({token.status_code}): run `make up`")
        self._http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    @classmethod
    def from_env(cls, env: dict[str, str]) -> AirflowClient:
        return cls(env["AIRFLOW_API_URL"], env["AIRFLOW_USERNAME"], env["AIRFLOW_PASSWORD"])

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if method != "GET":
            kwargs.setdefault("timeout", WRITE_TIMEOUT)
        response = self._http.request(method, f"/api/v2{path}", **kwargs)
        if response.is_error:
            kind = AirflowServerError if response.is_server_error else AirflowError
            raise kind(f"Airflow {method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def dag_url(self, dag_id: str) -> str:
        """The DAG's page in the Airflow UI (its runs, and the banner of a running backfill with Cancel)."""
        return f"{self.base_url}/dags/{dag_id}"

    def wait_for_dag(self, dag_id: str, timeout: float = 180.0) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` (new files are seen on its refresh interval)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._http.get(f"/api/v2/dags/{dag_id}").status_code == 200:
                return
            time.sleep(2)
        raise TimeoutError(
            f"DAG {dag_id} not parsed by Airflow within {timeout:.0f}s: see the import errors in the UI "
            "and .stack/logs/airflow-dag-processor.log"
        )

    def unpause(self, dag_id: str) -> None:
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def pause(self, dag_id: str) -> None:
        """Pause the DAG: its runs, backfills' included, stay queued."""
        self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def unhealthy(self) -> list[str]:
        """The needed components that are not healthy, with their last heartbeat; empty when all are."""
        health = self._call("GET", "/monitor/health")
        sick = []
        for name in NEEDED:
            info = health.get(name) or {}
            if info.get("status") != "healthy":
                beat = info.get(f"latest_{name}_heartbeat")
                sick.append(f"{name} {info.get('status') or 'unknown'}" + (f" (last heartbeat {beat})" if beat else ""))
        return sick

    def pauses(self, dag_id: str, backfill_id: int | None = None) -> list[str]:
        """What keeps the runs a wait is for from starting: the DAG paused, or the backfill making them paused."""
        where = self.dag_url(dag_id)
        found = []
        if self._call("GET", f"/dags/{dag_id}")["is_paused"]:
            found.append(f"the DAG {dag_id} is paused: unpause it on {where}")
        if backfill_id is not None:
            backfill = self.get_backfill(backfill_id)
            if backfill["is_paused"] and not backfill["completed_at"]:
                found.append(f"backfill {backfill_id} is paused: resume or cancel it on {where}")
        return found

    def check_health(self) -> None:
        """Raise AirflowUnhealthy unless the scheduler and the metadata database are healthy."""
        if sick := self.unhealthy():
            raise AirflowUnhealthy(f"Airflow is not healthy: {', '.join(sick)}; {HEALTH_HINT}")

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

    def get_backfill(self, backfill_id: int) -> dict[str, Any]:
        return self._call("GET", f"/backfills/{backfill_id}")

    def active_backfill(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG's running backfill, if any: the newest one, since no other can start while one runs."""
        newest = self._call("GET", "/backfills", params={"dag_id": dag_id, "order_by": "-id", "limit": 1})["backfills"]
        return newest[0] if newest and not newest[0]["completed_at"] else None

    def backfill(
        self,
        dag_id: str,
        from_date: datetime,
        to_date: datetime,
        conf: dict[str, Any] | None = None,
        max_active_runs: int = 1,
    ) -> int:
        """Create a backfill over ``from_date..to_date`` (both inclusive); returns its id.

        Raises BackfillConflict when another backfill of the DAG runs. When the request times out, a backfill
        the server went on to create is taken as this one (asking again would only meet it as a conflict).
        """
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
            try:
                response = self._http.post("/api/v2/backfills", json=body, timeout=WRITE_TIMEOUT)
            except httpx.TimeoutException:
                made = self.active_backfill(dag_id)
                if made and _at(made["created_at"]) >= since:
                    return made["id"]
                raise
            if not (response.status_code == 503 and "locked" in response.text):
                break
            # SQLite refused a write: remove what Airflow's best-effort clean-up of the partial backfill left,
            # the last time too, or that backfill would stand in the way of every later one
            discard_from_outside(dag_id, since)
            if attempt == BACKFILL_ATTEMPTS:
                break
            time.sleep(2 * attempt)
        if response.status_code == 409 and (active := self.active_backfill(dag_id)):
            raise BackfillConflict(
                f"backfill {active['id']} of {dag_id} ({active['from_date'][:10]}..{active['to_date'][:10]}) "
                f"is still running: wait until it ends or cancel it on {self.dag_url(dag_id)}, then try again"
            )
        if response.is_error:
            raise AirflowError(f"Airflow POST /backfills -> {response.status_code}: {response.text[:500]}")
        return response.json()["id"]

    def runs(self, dag_id: str, **filters: str) -> list[dict[str, Any]]:
        """Every run of the DAG that matches the REST filters (e.g. ``logical_date_gte``), oldest first.

        One answer holds at most a page (without ``order_by``, the oldest), so it reads page after page.
        """
        found: list[dict[str, Any]] = []
        while True:
            params = {**filters, "order_by": "id", "limit": PAGE, "offset": len(found)}
            page = self._call("GET", f"/dags/{dag_id}/dagRuns", params=params)
            found += page["dag_runs"]
            if not page["dag_runs"] or len(found) >= page["total_entries"]:
                return found

    def runs_by_day(self, dag_id: str, days: list[date]) -> dict[date, dict[str, Any]]:
        """Each day's run (see ``runs_of_days``), looked up by logical date."""
        window = {
            "logical_date_gte": midnight(min(days)).isoformat(),
            "logical_date_lte": midnight(max(days)).isoformat(),
        }
        return runs_of_days(self.runs(dag_id, **window), days)

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def explain(self, run: dict[str, Any]) -> str:
        """Why a run did not succeed: its state and its failed tasks."""
        failed = sorted(
            t["task_id"] for t in self.task_instances(run["dag_id"], run["dag_run_id"]) if t["state"] == "failed"
        )
        return f"run {run['dag_run_id']} ended {run['state']} (failed tasks: {', '.join(failed) or 'none'})"

    def watch(
        self,
        poll: Callable[[], tuple[str, T | None]],
        timeout: float,
        report: Callable[[str], None],
        dag_id: str,
        backfill_id: int | None = None,
    ) -> T:
        """Call ``poll`` every ``poll_s`` until it returns a result; ``report`` its line each time the line changes.

        The line names a pause of the DAG (or of the backfill ``backfill_id``) that keeps runs queued. Fails when
        the scheduler or the metadata database stays unhealthy (or the api-server silent, or failing with 5xx) for
        ``health_grace_s``, when a pause lasts as long, and after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        shown, line = None, "no answer yet"
        sick_since: float | None = None
        paused_since: float | None = None
        while True:
            paused: list[str] = []
            try:
                line, result = poll()
                if result is None:
                    paused = self.pauses(dag_id, backfill_id)
                    line += f" ({'; '.join(paused)})" if paused else ""
                if line != shown:
                    report(line)
                    shown = line
                if result is not None:
                    return result
                sick = self.unhealthy()
            except httpx.TransportError as error:
                sick = [f"the api-server at {self.base_url} does not answer ({type(error).__name__})"]
            except AirflowServerError as error:
                sick = [f"the api-server at {self.base_url} fails ({error})"]
            now = time.monotonic()
            sick_since = _since(sick_since, now, bool(sick))
            paused_since = _since(paused_since, now, bool(paused))
            if sick_since is not None and now - sick_since >= self.health_grace_s:
                raise AirflowUnhealthy(
                    f"Airflow unhealthy for {now - sick_since:.0f}s: {', '.join(sick)}; {HEALTH_HINT}"
                )
            if paused_since is not None and now - paused_since >= self.health_grace_s:
                raise AirflowPaused(
                    f"no run starts: {'; '.join(paused)} ({now - paused_since:.0f}s so far); then try again"
                )
            if now >= deadline:
                raise TimeoutError(f"still waiting after {timeout:.0f}s: {line}; see {self.base_url}")
            time.sleep(self.poll_s)

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 900.0, report: Callable[[str], None] = lambda _: None
    ) -> dict[str, Any]:
        """Wait for a terminal state; raise with the failed tasks' names when it is not success."""

        def poll() -> tuple[str, dict[str, Any] | None]:
            run = self.run(dag_id, run_id)
            return f"run {run_id}: {run['state']}", run if run["state"] in TERMINAL else None

        run = self.watch(poll, timeout, report, dag_id)
        if run["state"] != "success":
            raise AirflowRunFailed(f"{self.explain(run)}; see {self.dag_url(dag_id)}")
        return run

    def wait_for_days(
        self,
        dag_id: str,
        days: list[date],
        backfill: dict[str, Any],
        report: Callable[[str], None],
    ) -> dict[date, dict[str, Any]]:
        """Wait until the run of every day has ended, whether ``backfill`` made it or left it in flight; raise with
        each failed run's failed tasks when one did not succeed."""

        def poll() -> tuple[str, dict[date, dict[str, Any]] | None]:
            runs = self.runs_by_day(dag_id, days)
            done = len(runs) == len(days) and all(run["state"] in TERMINAL for run in runs.values())
            return progress(days, runs, backfill), runs if done else None

        runs = self.watch(poll, wait_budget(len(days)), report, dag_id, backfill["id"])
        problems = [self.explain(run) for run in runs.values() if run["state"] != "success"]
        problems += [
            f"run {run['dag_run_id']} holds the logical date of {day} but drains {run['data_interval_start'][:10]} "
            "(delete that run, then try again)"
            for day, run in runs.items()
            if run["data_interval_start"] and _at(run["data_interval_start"]) != midnight(day)
        ]
        wanted = backfill["dag_run_conf"] or {}
        problems += [
            f"run {run['dag_run_id']} of {day}, in flight before the backfill, ran with conf {run['conf'] or {}} "
            f"instead of {wanted} (now that it has ended, try again: the backfill reruns it)"
            for day, run in runs.items()
            if not of_backfill(run, backfill) and (run["conf"] or {}) != wanted
        ]
        if problems:
            raise AirflowRunFailed(f"{'; '.join(problems)}; see {self.dag_url(dag_id)}")
        return runs

    def wait_for_backfill(self, backfill: dict[str, Any], report: Callable[[str], None]) -> None:
        """Wait until the scheduler has finished (or someone cancelled) ``backfill``, reporting its days' runs."""
        first, last = _at(backfill["from_date"]).date(), _at(backfill["to_date"]).date()
        days = days_between(first, last)

        def poll() -> tuple[str, bool | None]:
            runs = self.runs_by_day(backfill["dag_id"], days)
            completed = self.get_backfill(backfill["id"])["completed_at"]
            return f"backfill {backfill['id']}: {progress(days, runs)}", True if completed else None

        self.watch(poll, wait_budget(len(days)), report, backfill["dag_id"], backfill["id"])

    def close(self) -> None:
        self._http.close()
