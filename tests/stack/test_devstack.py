"""The stack manager: idempotent `up`, truthful `status`, a clear error for a port already taken."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient

import devstack.__main__ as devstack_cli
from devstack import paths, processes
from devstack.__main__ import option_value, retry_on_sqlite_lock
from devstack.services import SERVICES, kraft_cluster_id
from tests.waiting import wait_until


def _devstack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args], capture_output=True, text=True, timeout=300, cwd=paths.REPO
    )


def _pids() -> dict[str, int]:
    return {s.name: processes.recorded_process(s.name).pid for s in SERVICES}


def test_second_up_is_a_noop(stack_env):
    before = _pids()
    result = _devstack("up")
    assert result.returncode == 0, result.stderr
    assert _pids() == before
    assert all(f"{s.name}: already running" in result.stderr for s in SERVICES)


@pytest.mark.disruptive
def test_a_service_started_while_the_stack_runs_gets_the_stacks_settings_not_the_shells(stack_env):
    """A shell with another topic prefix and lake restarted the API: it took them, and accepted records that no drain
    reads; Kafka's start made the shell's topics."""
    shell = {**os.environ, "PINTEREST_TOPIC_PREFIX": "shell-topics", "LAKE_BUCKET": "shell-lake"}

    def start(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devstack", "start", name], env=shell, capture_output=True, text=True, timeout=300
        )

    kafka = start("kafka")  # running: only its after-start step runs, which ensures the topics
    assert kafka.returncode == 0, kafka.stderr
    assert "warning: the running stack keeps its PINTEREST_TOPIC_PREFIX" in kafka.stderr
    topics = AdminClient({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}).list_topics(timeout=30).topics
    assert not any(topic.startswith("shell-topics.") for topic in topics)
    assert _devstack("stop", "api").returncode == 0
    api = start("api")
    assert api.returncode == 0, api.stderr
    environ = processes.recorded_process("api").environ()
    assert environ["PINTEREST_TOPIC_PREFIX"] == stack_env["PINTEREST_TOPIC_PREFIX"]
    assert environ["LAKE_BUCKET"] == stack_env["LAKE_BUCKET"]


def test_status_reports_every_service_healthy(stack_env):
    last: list[subprocess.CompletedProcess[str]] = []

    def all_healthy() -> bool:
        last[:] = [_devstack("status")]
        return last[0].returncode == 0 and set(_states(last[0].stdout).values()) == {"healthy"}

    # status probes each service once, with short timeouts: a busy machine may miss one answer, a broken one all
    with contextlib.suppress(AssertionError):
        wait_until(all_healthy, "every service healthy", timeout_s=60)
    assert last[0].returncode == 0, last[0].stdout
    assert _states(last[0].stdout) == {s.name: "healthy" for s in SERVICES}


def _states(status: str) -> dict[str, str]:
    listed = {line.split()[0]: line.split()[1] for line in status.splitlines()[1:] if line.strip()}
    return {s.name: listed.get(s.name, "not listed") for s in SERVICES}


def test_down_without_a_usable_venv_stops_nothing_and_says_why(stack_env, tmp_path):
    half_installed = tmp_path / "venv"  # a Python, but none of the stack manager's packages
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(half_installed)], check=True)
    before = _pids()
    result = subprocess.run(
        ["make", "--no-print-directory", f"VENV={half_installed}", "down"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=paths.REPO,
    )
    assert result.returncode != 0
    assert "cannot run the stack manager (ModuleNotFoundError: No module named" in result.stderr
    assert all(f"{name} (pid {pid})" in result.stderr for name, pid in before.items())
    assert f"make {half_installed}/.installed" in result.stderr
    assert _pids() == before


def test_port_taken_by_another_program_is_named():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(processes.StackError, match=f"port {port} needed by kafka is already in use"):
            processes.ensure_ports_free("kafka", [port])


def test_state_folder_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "-q", str(paths.STATE)], cwd=paths.REPO)
    assert ignored.returncode == 0


def test_the_code_under_test_reaches_the_stack_whatever_the_shell_sets(stack_env, tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "from kafka import KafkaAdminClient\n"
        "from include.settings import PlatformSettings\n\n\n"
        "def test_probe():\n"
        "    settings = PlatformSettings()\n"
        "    settings.s3_client().head_bucket(Bucket=settings.lake_bucket)\n"
        "    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)\n"
        "    assert settings.topic('pin') in admin.list_topics()\n"
        "    admin.close()\n"
    )
    shell = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "AWS_ACCESS_KEY_ID": "AKIA-from-the-shell",
        "AWS_SECRET_ACCESS_KEY": "secret-from-the-shell",
        "S3_ENDPOINT_URL": "http://127.0.0.1:1",
        "LAKE_BUCKET": "bucket-from-the-shell",
        "PINTEREST_TOPIC_PREFIX": "prefix-from-the-shell",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", str(probe)],
        cwd=paths.REPO,
        env={**os.environ, **shell},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize(
    ("argv", "returncode", "output", "retry"),
    [
        (["backfill", "create", "--dag-id", "d"], 1, "sqlite3.OperationalError: database is locked", True),
        (["backfill", "create", "--dag-id", "d"], 0, "database is locked (logged, but it went through)", False),
        (["backfill", "create", "--dag-id", "d"], 1, "Dag with dag_id: 'd' not found", False),
        (["dags", "trigger", "d"], 1, "database is locked", False),
    ],
)
def test_only_a_backfill_create_refused_by_sqlite_runs_again(argv, returncode, output, retry):
    assert retry_on_sqlite_lock(argv, returncode, output) is retry


def test_what_each_refusal_by_sqlite_left_is_removed_the_last_time_too(monkeypatch, capsys):
    argv = ["backfill", "create", "--dag-id", "d", "--from-date", "2026-01-01", "--to-date", "2026-01-02"]
    refused = subprocess.CompletedProcess(argv, 1, "", "sqlite3.OperationalError: database is locked\n")
    monkeypatch.setattr(devstack_cli.subprocess, "run", lambda *a, **k: refused)
    discarded: list[str] = []
    monkeypatch.setattr(devstack_cli, "discard_from_outside", lambda dag_id, since: discarded.append(dag_id) or "7")
    monkeypatch.setattr(devstack_cli.time, "sleep", lambda _: None)

    with pytest.raises(SystemExit) as ended:
        devstack_cli.main(["airflow", *argv])

    assert ended.value.code == 1
    assert discarded == ["d"] * devstack_cli.BACKFILL_ATTEMPTS
    said = capsys.readouterr().err
    assert "busy with the scheduler's writes 5 times; removed what Airflow's clean-up left of backfill 7" in said


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        (["backfill", "create", "--dag-id", "d", "--from-date", "2026-01-01"], "d"),
        (["backfill", "create", "--dag-id=d"], "d"),
        (["backfill", "create", "--from-date", "2026-01-01"], None),
        (["backfill", "create", "--dag-id"], None),
    ],
)
def test_the_dag_of_a_backfill_create_is_read_from_its_arguments(argv, value):
    assert option_value(argv, "--dag-id") == value


def test_a_kraft_cluster_id_never_starts_with_a_dash_the_storage_tool_would_take_for_an_option():
    ids = [kraft_cluster_id() for _ in range(2000)]  # about 31 of 2,000 plain ones would start with '-'
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 and base64.urlsafe_b64decode(i + "==") for i in ids)


def test_up_asks_again_about_a_service_that_answers_slowly_right_after_it_was_healthy(monkeypatch):
    # `up` waited every service healthy, then failed on one slow probe of its closing status (make demo/test too)
    answers = {"airflow-scheduler": iter(["unknown", "unhealthy", "healthy"])}
    monkeypatch.setattr(
        devstack_cli, "_state", lambda svc: (next(answers[svc.name]) if svc.name in answers else "healthy", "1")
    )
    monkeypatch.setattr(devstack_cli.time, "sleep", lambda _: None)
    assert {row[1] for row in devstack_cli._settled_rows()} == {"healthy"}
    # one that stays down still counts, once the settling time is over
    monkeypatch.setattr(devstack_cli, "SETTLE_S", 0.05)
    answers["api"] = iter(lambda: "unhealthy", None)
    answers["airflow-scheduler"] = iter(["healthy"] * 10**6)
    states = {row[0]: row[1] for row in devstack_cli._settled_rows()}
    assert states["api"] == "unhealthy" and states["kafka"] == "healthy"
