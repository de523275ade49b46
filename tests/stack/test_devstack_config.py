"""What the stack manager gives its processes and how it fails: the environment, the migration stamp, `env`'s quoting,
the prerequisite checks, the JWT secret, Kafka's logging, the Airflow ports and the API's readiness probe."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import warnings
from pathlib import Path

import jwt
import psutil
import pytest

from devstack import __main__ as cli
from devstack import install, paths, processes, secrets, services, spark_cds
from devstack.environment import process_env
from devstack.ports import PORTS
from tests.api.scratch_kafka import scratch_kafka

ANOTHER_SPARK = {
    "SPARK_HOME": "/opt/another-spark",
    "SPARK_CONF_DIR": "/opt/another-spark/conf",
    "PYSPARK_PYTHON": "/usr/bin/python2",
    "PYSPARK_DRIVER_PYTHON": "/usr/bin/python2",
    "HADOOP_CONF_DIR": "/etc/hadoop/conf",
}
AIRFLOW_SERVICES = [s for s in services.SERVICES if s.name.startswith("airflow-")]


@pytest.fixture
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stack's secrets and settings files in ``tmp_path``: the running stack's are not touched."""
    monkeypatch.setattr(paths, "SECRETS_FILE", tmp_path / "secrets.env")
    monkeypatch.setattr(paths, "STACK_ENV_FILE", tmp_path / "stack.env")
    for name in secrets.GENERATED:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


# --- another Spark in the caller's shell ---------------------------------------------------


def test_another_spark_in_the_shell_reaches_neither_the_stack_nor_the_class_data_training(private_state, monkeypatch):
    for name, value in ANOTHER_SPARK.items():
        monkeypatch.setenv(name, value)
    env = process_env()
    assert set(ANOTHER_SPARK) & set(env) == set()
    assert env["SPARK_CDS_ARCHIVE"] == str(paths.SPARK_CDS_ARCHIVE)
    training = spark_cds.submit_env()
    assert {"SPARK_HOME", "SPARK_CONF_DIR", "HADOOP_CONF_DIR"} & set(training) == set()
    assert training["PYSPARK_PYTHON"] == training["PYSPARK_DRIVER_PYTHON"] != ANOTHER_SPARK["PYSPARK_PYTHON"]


def test_the_venvs_spark_submit_runs_when_the_shell_points_spark_home_elsewhere(private_state, monkeypatch, tmp_path):
    import pyspark

    monkeypatch.setenv("SPARK_HOME", str(tmp_path / "another-spark"))
    command = [str(paths.VENV_BIN / "spark-submit"), "--version"]
    done = subprocess.run(command, env=process_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"version {pyspark.__version__}" in done.stdout + done.stderr


def test_a_private_file_is_owner_only_even_over_a_readable_leftover_of_a_crashed_write(tmp_path):
    target = tmp_path / "secrets.env"
    leftover = target.with_suffix(".tmp")
    leftover.write_text("half written")
    leftover.chmod(0o644)
    secrets.write_private_file(target, "KEY=value\n")
    assert target.read_text() == "KEY=value\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not leftover.exists()


# --- the Airflow migration stamp -----------------------------------------------------------


def _prepare_airflow(monkeypatch: pytest.MonkeyPatch, home: Path, database_url: str) -> int:
    """Run the api-server's prepare step on ``home`` and ``database_url``; how many times it migrated."""
    migrations: list[tuple[str, ...]] = []

    def airflow_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        migrations.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(paths, "AIRFLOW_HOME", home)
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", database_url)
    monkeypatch.setattr(services, "airflow_cli", airflow_cli)
    services.service("airflow-api-server").prepare()
    assert set(migrations) <= {("db", "migrate")}
    return len(migrations)


def test_the_migration_stamp_keeps_no_database_password_and_only_its_owner_reads_it(
    private_state, monkeypatch, tmp_path
):
    url = "postgresql+psycopg2://airflow:pa55-w0rd@db.example:5432/airflow"
    assert _prepare_airflow(monkeypatch, tmp_path, url) == 1
    stamp = tmp_path / ".migrated"
    assert "pa55-w0rd" not in stamp.read_text()
    assert stat.S_IMODE(stamp.stat().st_mode) == 0o600
    assert _prepare_airflow(monkeypatch, tmp_path, url) == 0
    assert _prepare_airflow(monkeypatch, tmp_path, url.replace("pa55-w0rd", "changed")) == 1


def test_a_deleted_sqlite_database_is_migrated_again(private_state, monkeypatch, tmp_path):
    database = tmp_path / "airflow.db"
    url = f"sqlite:///{database}?timeout=60"
    database.touch()
    assert _prepare_airflow(monkeypatch, tmp_path, url) == 1
    assert _prepare_airflow(monkeypatch, tmp_path, url) == 0
    database.unlink()
    assert _prepare_airflow(monkeypatch, tmp_path, url) == 1


# --- `devstack env` ------------------------------------------------------------------------


def test_env_output_survives_eval_whatever_the_values_hold(private_state, monkeypatch, capsys, tmp_path):
    password = 'it\'s $(touch pwned) `touch pwned` "q" a;b & c\\d * ~'
    monkeypatch.setenv("MINIO_ROOT_PASSWORD", password)
    monkeypatch.setenv("LAKE_BUCKET", "a.lake-1")
    cli.main(["env"])
    exports = capsys.readouterr().out
    script = 'eval "$1" && printf "%s|%s" "$AWS_SECRET_ACCESS_KEY" "$LAKE_BUCKET"'
    shown = subprocess.run(["bash", "-c", script, "_", exports], capture_output=True, text=True, cwd=tmp_path)
    assert shown.stdout == f"{password}|a.lake-1", shown.stderr
    assert not (tmp_path / "pwned").exists()


def test_a_setting_changed_while_the_stack_runs_is_named_and_the_recorded_one_kept(
    private_state, monkeypatch, capsys, stack_env
):
    """`up` and `env` rewrote stack.env from the shell while the running processes kept their settings: a new
    LAKE_BUCKET sent the demo and tools to a lake the DAG never fills."""
    assert any(processes.recorded_process(s.name) for s in services.SERVICES)  # the stack of the test session runs
    monkeypatch.delenv("LAKE_BUCKET", raising=False)
    cli.main(["env"])  # no file yet (private_state): written from this environment
    recorded = paths.STACK_ENV_FILE.read_bytes()
    assert "export LAKE_BUCKET=pinterest-lake" in capsys.readouterr().out

    monkeypatch.setenv("LAKE_BUCKET", "another-lake")
    monkeypatch.setenv("MINIO_ROOT_PASSWORD", "another-password-0123456789")
    cli.main(["env"])

    out, err = capsys.readouterr()
    assert "export LAKE_BUCKET=pinterest-lake" in out  # the running stack's, for a new shell too
    assert "warning: the running stack keeps its LAKE_BUCKET 'pinterest-lake' (this environment gives " in err
    assert "'another-lake'); `make down` first to start it with yours" in err
    assert "warning: the running stack keeps its AWS_SECRET_ACCESS_KEY; `make down` first" in err
    assert "another-password" not in out + err  # a secret is named, never shown
    assert "export LAKE_FIRST_DAY=''" in out  # recorded too: the demo backfills no day before it
    assert paths.STACK_ENV_FILE.read_bytes() == recorded


# --- prerequisites and failing tools -------------------------------------------------------


@pytest.fixture
def private_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every place `install` reads or writes in ``tmp_path`` (nothing installed there): the stack's `.stack` and the
    venv's pyspark jars are not touched, even by an install that went ahead."""
    for name in ("PIDS", "LOGS", "AIRFLOW_HOME", "KAFKA_LIBS", "KAFKA_DATA", "MINIO_DATA", "S3A_JARS", "VENV_BIN"):
        monkeypatch.setattr(paths, name, tmp_path / "state" / name.lower())
    monkeypatch.setattr(paths, "MINIO_BIN", tmp_path / "state" / "minio" / "bin" / "minio")
    monkeypatch.setattr(paths, "SPARK_CDS_ARCHIVE", tmp_path / "state" / "cds" / "spark.jsa")
    monkeypatch.setattr(paths, "pyspark_jars_dir", lambda: tmp_path / "state" / "pyspark-jars")
    return tmp_path / "state"


def test_a_missing_prerequisite_is_named_in_one_line_with_the_readme(private_install, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, mvn or go
    with pytest.raises(SystemExit) as exited:
        cli.main(["install"])
    assert exited.value.code == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1, message
    assert "java, mvn, go not found on PATH" in message and "README.md" in message  # nothing installed yet
    assert not private_install.exists()  # stopped before it made or fetched anything


@pytest.mark.parametrize(
    ("kafka", "s3a", "minio", "tools"),
    [
        (True, True, True, ["java"]),
        (False, True, True, ["java", "mvn"]),
        (True, False, True, ["java", "mvn"]),
        (True, True, False, ["java", "go"]),
        (False, False, False, ["java", "mvn", "go"]),
    ],
)
def test_maven_and_go_are_needed_only_for_what_is_still_to_fetch_or_build(
    monkeypatch, tmp_path, kafka, s3a, minio, tools
):
    from devstack import versions

    monkeypatch.setattr(paths, "KAFKA_LIBS", tmp_path / "kafka")
    monkeypatch.setattr(paths, "S3A_JARS", tmp_path / "s3a")
    monkeypatch.setattr(paths, "MINIO_BIN", tmp_path / "minio" / "minio")
    for done, stamp, version in (
        (kafka, paths.KAFKA_LIBS / ".version", versions.KAFKA_VERSION),
        (s3a, paths.S3A_JARS / ".version", versions.HADOOP_VERSION),
        (minio, paths.MINIO_BIN.with_name(".version"), versions.MINIO_VERSION),
    ):
        if done:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(version)
    if minio:
        paths.MINIO_BIN.touch()
    assert install.needed_tools() == tools


def test_a_new_hadoop_aws_version_replaces_the_old_links_in_pysparks_jars(tmp_path):
    """The old version's jars go when the new ones are fetched: their links stayed, dangling, and every later
    `make up` failed on them."""
    source, target = tmp_path / "stack-jars", tmp_path / "pyspark-jars"
    source.mkdir()
    target.mkdir()
    (target / "spark-core.jar").write_bytes(b"spark's own")
    (target / "elsewhere.jar").symlink_to(tmp_path / "another-folder.jar")  # not ours: left as it is
    for name in ("hadoop-aws-3.4.1.jar", "bundle-1.jar"):
        (source / name).write_bytes(b"old")
    install.link_jars(source, target)
    for name in ("hadoop-aws-3.4.1.jar", "bundle-1.jar"):
        (source / name).unlink()  # as _maven_copy replaces the folder
    for name in ("hadoop-aws-3.5.0.jar", "bundle-1.jar"):  # one new name, one fetched again under its old name
        (source / name).write_bytes(b"new")

    install.link_jars(source, target)

    assert sorted(p.name for p in target.iterdir()) == [
        "bundle-1.jar",
        "elsewhere.jar",
        "hadoop-aws-3.5.0.jar",
        "spark-core.jar",
    ]
    assert (target / "bundle-1.jar").read_bytes() == (target / "hadoop-aws-3.5.0.jar").read_bytes() == b"new"
    assert (target / "elsewhere.jar").is_symlink() and (target / "spark-core.jar").read_bytes() == b"spark's own"


def test_a_failing_tool_is_named_in_one_line_with_its_log(tmp_path):
    log = tmp_path / "logs" / "tool.log"
    with pytest.raises(processes.StackError) as failed:
        install.run_logged(["sh", "-c", "echo 'the reason' >&2; exit 3"], log)
    message = str(failed.value)
    assert len(message.splitlines()) == 1
    assert "sh -c" in message and "exit code 3" in message and str(log) in message
    assert "the reason" in log.read_text()
    with pytest.raises(processes.StackError, match=r"no-such-tool not found on PATH; see Prerequisites in README\.md"):
        install.run_logged(["no-such-tool", "--version"], log)


def test_a_failed_class_data_training_is_a_warning(monkeypatch, capsys, tmp_path):
    venv_bin = tmp_path / "bin"
    venv_bin.mkdir()
    spark_submit = venv_bin / "spark-submit"
    spark_submit.write_text("#!/bin/sh\necho 'the JVM would not start' >&2\nexit 1\n")
    spark_submit.chmod(0o755)
    monkeypatch.setattr(paths, "VENV_BIN", venv_bin)
    monkeypatch.setattr(paths, "SPARK_CDS_ARCHIVE", tmp_path / "cds" / "spark.jsa")
    monkeypatch.setattr(paths, "LOGS", tmp_path / "logs")
    spark_cds.train_archive()
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "warning" in message and "run without it" in message and str(paths.LOGS) in message
    assert "the JVM would not start" in (paths.LOGS / "spark-cds-training.log").read_text()
    assert not paths.SPARK_CDS_ARCHIVE.exists()


def test_a_reinstalled_pyspark_makes_the_class_data_archive_stale(monkeypatch, tmp_path):
    jar = tmp_path / "spark-core.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setattr(paths, "pyspark_jars_dir", lambda: tmp_path)
    before = spark_cds.fingerprint()
    os.utime(jar, ns=(jar.stat().st_atime_ns, jar.stat().st_mtime_ns + 1_000_000_000))  # same jar, written again
    assert spark_cds.fingerprint() != before


# --- the JWT secret ------------------------------------------------------------------------


def _signs_hs512_without_warning(secret: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("error", jwt.InsecureKeyLengthWarning)
        try:
            jwt.encode({"sub": "check"}, secret, algorithm="HS512")
        except jwt.InsecureKeyLengthWarning:
            return False
    return True


def test_a_new_jwt_secret_is_long_enough_for_hs512(private_state):
    assert _signs_hs512_without_warning(secrets.load_secrets()["AIRFLOW_JWT_SECRET"])


def test_a_stored_short_jwt_secret_is_made_again_by_up_only_while_no_airflow_process_runs(private_state, monkeypatch):
    kept = {"MINIO_ROOT_USER": "lake-1", "MINIO_ROOT_PASSWORD": "p", "AIRFLOW_PASSWORD": "a"}
    secrets.write_env_file(paths.SECRETS_FILE, {**kept, "AIRFLOW_JWT_SECRET": "s" * 32})
    monkeypatch.setattr(
        processes, "recorded_process", lambda name: psutil.Process() if name == "airflow-scheduler" else None
    )
    cli._renew_short_jwt_secret()
    assert secrets.load_secrets()["AIRFLOW_JWT_SECRET"] == "s" * 32  # the scheduler still runs with it
    monkeypatch.setattr(processes, "recorded_process", lambda name: None)
    cli._renew_short_jwt_secret()
    renewed = secrets.load_secrets()
    assert _signs_hs512_without_warning(renewed["AIRFLOW_JWT_SECRET"])
    assert {name: renewed[name] for name in kept} == kept
    cli._renew_short_jwt_secret()
    assert secrets.load_secrets() == renewed


def test_the_stacks_airflow_processes_sign_with_its_secret_which_is_long_enough_for_hs512(stack_env):
    secret = process_env()["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert _signs_hs512_without_warning(secret)
    # each one's recorded process is its supervisor, which holds the environment the component started with (the
    # api-server's own /proc/<pid>/environ is blank: it renames itself with setproctitle)
    running = {s.name: processes.recorded_process(s.name) for s in AIRFLOW_SERVICES}
    assert None not in running.values(), running
    # names only: a failing comparison must not print the live secret into CI's output
    differ = [name for name, proc in running.items() if proc.environ().get("AIRFLOW__API_AUTH__JWT_SECRET") != secret]
    assert differ == [], "these Airflow processes run with another JWT secret (or none)"


# Which of the stack's secrets (by their name in .stack/secrets.env) each service may hold anywhere in its environment.
SECRETS_HELD = {
    "kafka": set(),
    "minio": {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"},  # its own root login, which the lake's keys are
    "airflow-api-server": {"AIRFLOW_JWT_SECRET"},
    "airflow-scheduler": {"AIRFLOW_JWT_SECRET", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"},  # runs the tasks
    "airflow-dag-processor": {"AIRFLOW_JWT_SECRET"},
    "airflow-triggerer": {"AIRFLOW_JWT_SECRET"},
    "api": set(),
}


def test_secrets_set_in_the_callers_shell_reach_only_the_services_that_read_them(private_state, monkeypatch):
    planted = {
        "MINIO_ROOT_PASSWORD": "planted-minio-password-0123456789",
        "AIRFLOW_JWT_SECRET": "planted-jwt-secret-" + "j" * 64,
        "AIRFLOW_PASSWORD": "planted-admin-password",
        "API_KEY": "planted-api-key-0123456789",
    }
    for name, value in planted.items():
        monkeypatch.setenv(name, value)  # the shell's value wins over a generated one (devstack.secrets)
    database = "postgresql+psycopg2://airflow:planted-db-password@db.example/airflow"
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", database)
    values = {**planted, "database password": "planted-db-password"}
    allowed = {
        "kafka": set(),
        "minio": {"MINIO_ROOT_PASSWORD"},
        "airflow-api-server": {"AIRFLOW_JWT_SECRET", "database password"},
        "airflow-scheduler": {"AIRFLOW_JWT_SECRET", "database password", "MINIO_ROOT_PASSWORD"},
        "airflow-dag-processor": {"AIRFLOW_JWT_SECRET", "database password"},
        "airflow-triggerer": {"AIRFLOW_JWT_SECRET", "database password"},
        "api": {"API_KEY"},
    }
    assert set(allowed) == {s.name for s in services.SERVICES}
    for svc in services.SERVICES:
        text = "\n".join(svc.environment().values())
        held = {name for name, value in values.items() if value in text}
        assert held == allowed[svc.name], svc.name


def test_the_callers_aws_settings_reach_no_service_and_no_spark_job(private_state, monkeypatch):
    """s3a and boto3 read a session token from the environment and send it with the lake's keys, which MinIO then
    refuses: a shell with AWS SSO or STS credentials exported made every Spark task fail."""
    foreign = {
        "AWS_SESSION_TOKEN": "planted-session-token",
        "AWS_PROFILE": "planted-profile",
        "AWS_ENDPOINT_URL": "https://planted.example",
    }
    for name, value in foreign.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-shell-secret")  # the stack's own keys win over the shell's
    stored = secrets.load_secrets()
    for name, env in [*((svc.name, svc.environment()) for svc in services.SERVICES), ("spark", spark_cds.submit_env())]:
        assert not set(foreign) & set(env), name
        assert "planted-shell-secret" not in env.values(), name
        if "AWS_SECRET_ACCESS_KEY" in env:
            assert env["AWS_SECRET_ACCESS_KEY"] == stored["MINIO_ROOT_PASSWORD"], name


def test_the_api_listens_where_the_stack_probes_it_whatever_the_shell_says(private_state, monkeypatch):
    monkeypatch.setenv("API_HOST", "0.0.0.0")
    monkeypatch.setenv("API_PORT", "9999")
    env = services.service("api").environment()
    assert (env["API_HOST"], env["API_PORT"]) == ("127.0.0.1", str(PORTS["api"]))
    assert env["API_URL"] == f"http://127.0.0.1:{PORTS['api']}"


def test_each_service_runs_with_only_the_secrets_it_needs(stack_env):
    assert set(SECRETS_HELD) == {s.name for s in services.SERVICES}
    stored = secrets.load_secrets()
    assert set().union(*SECRETS_HELD.values()) <= set(stored)
    for name, allowed in SECRETS_HELD.items():
        root = processes.recorded_process(name)
        assert root is not None, f"{name} is not running"
        # the recorded process, the service's supervisor, is started with the service's environment; one of the
        # processes under it may blank its own (the api-server renames itself with setproctitle)
        assert root.environ(), f"the environment of {name}'s recorded process could not be read"
        environs = [env for env in (p.environ() for p in [root, *root.children(recursive=True)]) if env]
        for env in environs:
            text = "\n".join(env.values())
            held = {secret for secret, value in stored.items() if value and value in text}
            assert held == allowed, f"{name} holds {sorted(held)}, expected {sorted(allowed)}"


# --- Kafka's logging -----------------------------------------------------------------------

LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] (?P<level>[A-Z]+) .* \((?P<logger>[\w.$-]+)\)$")


def test_kafka_logs_in_the_configured_format_and_levels(monkeypatch, tmp_path):
    for name in ("KAFKA_CONFIG", "KAFKA_LOG4J"):
        monkeypatch.setattr(paths, name, tmp_path / getattr(paths, name).name)
    monkeypatch.setattr(paths, "KAFKA_DATA", tmp_path / "data")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "meta.properties").touch()  # formatted: prepare only writes the configuration files
    services.service("kafka").prepare()  # the logging configuration the stack's broker starts with
    with scratch_kafka(tmp_path / "broker") as broker:
        broker.create_topics("logging")
    lines = (tmp_path / "broker" / "kafka.out").read_text().splitlines()
    logged = [m for m in map(LOG_LINE.match, lines) if m]
    assert logged, "\n".join(lines[:20])  # the first start warns that the metadata log is empty
    chatty = [
        m.group(0)
        for m in logged
        if m["level"] in ("DEBUG", "INFO") and re.match(r"(org\.apache\.)?kafka\b", m["logger"])
    ]
    assert chatty == []


# --- Airflow's ports and the API's readiness -----------------------------------------------


def test_the_scheduler_health_server_is_port_checked_on_loopback_and_no_log_server_is_started():
    scheduler, triggerer = services.service("airflow-scheduler"), services.service("airflow-triggerer")
    assert scheduler.ports == (8974,)
    assert scheduler.extra_env()["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST"] == "127.0.0.1"
    assert scheduler.extra_env()["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"] == "8974"
    assert "--skip-serve-logs" in scheduler.argv() and "--skip-serve-logs" in triggerer.argv()


def test_the_stack_serves_no_task_logs_and_the_scheduler_health_only_on_loopback(stack_env):
    listening = {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert {port for _, port in listening} & {8793, 8794} == set()
    assert {ip for ip, port in listening if port == 8974} == {"127.0.0.1"}


def test_the_api_counts_as_healthy_only_when_ready_to_accept_records(monkeypatch):
    probed: list[str] = []
    monkeypatch.setattr(services, "_http_ok", lambda url: probed.append(url) or True)
    assert services.service("api").healthy()
    assert probed == ["http://127.0.0.1:8000/ready"]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("up", "interrupted: what was started keeps running"),
        ("down", "what was not stopped yet keeps running; run it again"),
    ],
)
def test_an_interrupted_command_says_what_keeps_running_instead_of_a_traceback(monkeypatch, capsys, command, says):
    def interrupted(_args) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, f"cmd_{command}", interrupted)
    with pytest.raises(SystemExit) as exited:
        cli.main([command])
    assert exited.value.code == 130
    assert says in capsys.readouterr().err


def test_with_the_api_server_silent_its_components_health_is_unknown_not_bad(stack_env, monkeypatch, capsys):
    with socket.socket() as closed:  # a port nothing listens on once the socket is closed
        closed.bind(("127.0.0.1", 0))
        silent_port = closed.getsockname()[1]
    monkeypatch.setitem(services.PORTS, "airflow", silent_port)

    with pytest.raises(SystemExit) as exited:
        cli.main(["status"])

    assert exited.value.code == 1
    out = capsys.readouterr().out
    states = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:] if line.startswith(("airflow", "api"))}
    assert states == {
        "airflow-api-server": "unhealthy",
        "airflow-scheduler": "unknown",
        "airflow-dag-processor": "unknown",
        "airflow-triggerer": "unknown",
        "api": "healthy",
    }
    assert "unknown: the airflow-api-server reports these components' health, and it does not answer" in out


def test_a_setting_the_components_would_refuse_stops_the_stack_manager_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("PINTEREST_TOPIC_PREFIX", "my topics")
    with pytest.raises(SystemExit) as exited:
        cli.main(["env"])
    assert exited.value.code == 2
    assert "error: bad setting: PINTEREST_TOPIC_PREFIX 'my topics' is not a topic prefix" in capsys.readouterr().err


def test_a_topic_retention_kafka_cannot_take_stops_up_before_anything_starts(monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_TOPIC_RETENTION_MS", "90d")
    with pytest.raises(SystemExit) as exited:
        cli.main(["up"])  # refused before installing or starting anything: the running stack is not touched
    assert exited.value.code == 2
    expected = "error: bad setting: KAFKA_TOPIC_RETENTION_MS must be an integer number of milliseconds, got '90d'"
    assert expected in capsys.readouterr().err


def test_a_setting_refused_by_its_type_is_named_too(monkeypatch, capsys):
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", "three")
    with pytest.raises(SystemExit):
        cli.main(["env"])
    assert "error: bad setting: KAFKA_TOPIC_PARTITIONS: Input should be a valid integer" in capsys.readouterr().err
