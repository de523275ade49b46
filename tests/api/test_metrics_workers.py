"""With several workers, every scrape of /metrics shows the whole API's figures, not one worker's."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import psutil

from tests.api_process import REPO, start_api, stop_api

INVALID_GEO = '{"ind": "not a number"}'
REJECTED = re.compile(r'^ingest_records_rejected_total\{entity="geo",reason="invalid"\} (\S+)$', re.MULTILINE)
CONNECTED = re.compile(r"^ingest_kafka_producer_connected (\S+)$", re.MULTILINE)


def worker_pids(api_pid: int) -> set[int]:
    """The uvicorn worker processes (spawned by multiprocessing) of the API process."""
    children = psutil.Process(api_pid).children()
    return {child.pid for child in children if "spawn_main" in " ".join(child.cmdline())}


def connected_figures(url: str, timeout_s: float = 15) -> list[str]:
    """The samples of ingest_kafka_producer_connected once they read 1 (or at ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = CONNECTED.findall(httpx.get(f"{url}/metrics", timeout=10).text)
        if samples == ["1.0"] or time.monotonic() > deadline:
            return samples
        time.sleep(0.3)


def post_invalid(url: str, count: int) -> None:
    """``count`` invalid geo records, each on a new connection so that the workers share them."""
    for _ in range(count):
        assert httpx.post(f"{url}/geo/", content=INVALID_GEO, timeout=10).status_code == 422


def scraped_rejections(url: str, scrapes: int) -> list[float]:
    """The geo ``invalid`` rejection counter of ``scrapes`` scrapes, each on a new connection (0 when absent)."""
    figures = []
    for _ in range(scrapes):
        found = REJECTED.search(httpx.get(f"{url}/metrics", timeout=10).text)
        figures.append(float(found.group(1)) if found else 0.0)
    return figures


def test_two_workers_count_together_without_a_configured_directory(
    stack_env: dict[str, str], api_topics: str, tmp_path: Path
) -> None:
    process, url = start_api(stack_env, api_topics, tmp_path / "api.log", {"API_WORKERS": "2"})
    try:
        assert len(worker_pids(process.pid)) == 2
        post_invalid(url, 30)
        assert scraped_rejections(url, 8) == [30.0] * 8
        assert connected_figures(url) == ["1.0"]  # one sample for the API, not one per worker
    finally:
        stop_api(process)


def test_a_configured_directory_is_emptied_of_the_previous_run_and_shared_by_both_workers(
    stack_env: dict[str, str], api_topics: str, tmp_path: Path
) -> None:
    shared = tmp_path / "metrics"
    extra = {"API_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    first, url = start_api(stack_env, api_topics, tmp_path / "first.log", extra)
    try:
        post_invalid(url, 5)
    finally:
        stop_api(first)
    assert list(shared.glob("*.db")), "the first run left no metric files to clean"

    second, url = start_api(stack_env, api_topics, tmp_path / "second.log", extra)
    try:
        post_invalid(url, 30)
        assert scraped_rejections(url, 8) == [30.0] * 8
        workers = worker_pids(second.pid)
        served = {int(path.stem.rsplit("_", 1)[1]) for path in shared.glob("histogram_*.db")}
        assert len(served) == 2 and served <= workers, (served, workers)
    finally:
        stop_api(second)


def test_an_empty_directory_setting_counts_as_unset_and_writes_no_files(
    stack_env: dict[str, str], api_topics: str, tmp_path: Path
) -> None:
    process, url = start_api(stack_env, api_topics, tmp_path / "api.log", {"PROMETHEUS_MULTIPROC_DIR": ""})
    try:
        post_invalid(url, 3)
        assert scraped_rejections(url, 1) == [3.0]
        written = list(REPO.glob(f"*_{process.pid}.db"))  # in the API's working directory
        assert written == []
    finally:
        stop_api(process)
        for path in REPO.glob(f"*_{process.pid}.db"):
            path.unlink()
