"""The jobs on a Spark standalone cluster, as docker-compose.yaml runs them (``spark://spark-master:7077``): a master
and a worker started here as processes of their own, the executors in the worker's JVMs, reading and writing MinIO
through s3a with the credentials of the worker's environment (as compose gives its worker), the driver submitted by
the same operator and code as with ``local[*]``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack import paths
from devstack.environment import SECRET_NAMES, without_foreign_tools
from include.lake import partition_prefix
from include.records import ENTITIES
from plugins.lake_spark import ANALYTICS_JOB, CLEAN_JOB
from tests.api_process import free_port
from tests.spark_jobs.test_spark_on_minio import (
    DAY,
    assert_analytics_of_inds_1_to_10,
    put_raw,
    read_parquet_rows,
    submit,
)

HEALTHCHECK = paths.REPO / "docker" / "healthcheck.py"
START_BUDGET_S = 180


@dataclass(frozen=True)
class Cluster:
    master_url: str
    status_url: str  # the master's JSON status (its web UI's /json/)
    work_dir: Path  # the worker's: one folder per application, one per executor in it


def _start(role: str, arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [str(paths.VENV_BIN / "spark-class"), f"org.apache.spark.deploy.{role}", *arguments]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def cluster(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A master and a worker of 2 cores on loopback; the worker has the lake's keys in its environment and not the
    repository on its Python path (executors get the packages the operator ships)."""
    root = tmp_path_factory.mktemp("standalone")
    base = without_foreign_tools(os.environ)
    base = {key: value for key, value in base.items() if key not in SECRET_NAMES and key != "PYTHONPATH"}
    base |= {"SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(root), "SPARK_WORKER_DIR": str(root / "work")}
    keys = {name: stack_env[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    port, master_ui, worker_ui = free_port(), free_port(), free_port()
    master = _start("master.Master", ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(master_ui)],
                    base, root / "master.log")  # fmt: skip
    worker_args = ["--host", "127.0.0.1", "--webui-port", str(worker_ui), "--cores", "2", "--memory", "2g",
                   "--work-dir", str(root / "work"), f"spark://127.0.0.1:{port}"]  # fmt: skip
    worker = _start("worker.Worker", worker_args, base | keys, root / "worker.log")
    status_url = f"http://127.0.0.1:{master_ui}/json/"
    try:
        # compose's own healthcheck of its worker, on this master
        check = [sys.executable, str(HEALTHCHECK), status_url, "workers[host=127.0.0.1].state=ALIVE"]
        deadline = time.monotonic() + START_BUDGET_S
        while subprocess.run(check, capture_output=True, timeout=30).returncode != 0:
            logs = {log.name: log.read_text()[-2000:] for log in (root / "master.log", root / "worker.log")}
            assert master.poll() is None and worker.poll() is None, logs
            assert time.monotonic() < deadline, f"no worker alive after {START_BUDGET_S} s: {logs}"
            time.sleep(1)
        yield Cluster(f"spark://127.0.0.1:{port}", status_url, root / "work")
    finally:
        _stop(worker)
        _stop(master)


def _status(cluster: Cluster) -> dict[str, Any]:
    with urllib.request.urlopen(cluster.status_url, timeout=10) as answer:
        return json.load(answer)


def test_clean_and_analytics_run_on_the_standalone_cluster_with_the_same_operator(
    s3: Any, scratch_bucket: str, cluster: Cluster, stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": cluster.master_url}))
    aws = {"conn_type": "aws", "extra": {"endpoint_url": stack_env["S3_ENDPOINT_URL"]}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(aws))
    inds = list(range(1, 11))
    for entity in ENTITIES:
        put_raw(s3, scratch_bucket, entity, inds, reposted=[2, 3])

    submit(CLEAN_JOB, scratch_bucket)
    submit(ANALYTICS_JOB, scratch_bucket)

    for entity in ENTITIES:
        rows = read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", entity, DAY.date()))
        assert sorted(row["ind"] for row in rows) == inds, entity  # re-posts once, the stray object not read
    assert_analytics_of_inds_1_to_10(s3, scratch_bucket)

    # both ran as applications of the cluster, their executors in the worker (one folder per executor)
    finished = [app for app in _status(cluster)["completedapps"] if app["state"] == "FINISHED"]
    assert len(finished) == 2, _status(cluster)
    for app in finished:
        executors = [folder for folder in (cluster.work_dir / app["id"]).iterdir() if (folder / "stderr").is_file()]
        assert executors, f"no executor of {app['id']} ran in the worker"
