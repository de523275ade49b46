"""The services of the local stack: how each starts, when it is healthy, what it prepares once up."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack import paths, processes
from devstack.environment import process_env, service_env, write_airflow_passwords
from devstack.install import run_logged
from devstack.log import step
from devstack.ports import AIRFLOW_SCHEDULER_HEALTH, PORTS
from devstack.secrets import write_private_file


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


@dataclass(frozen=True)
class Service:
    """One long-running process of the stack."""

    name: str
    ports: tuple[int, ...]
    url: str
    argv: Callable[[], list[str]]
    healthy: Callable[[], bool]
    timeout: float = 90.0
    prepare: Callable[[], None] = field(default=lambda: None)
    after_start: Callable[[], None] = field(default=lambda: None)
    extra_env: Callable[[], dict[str, str]] = field(default=dict)
    secrets: frozenset[str] = frozenset()  # the secret variables (``SECRET_NAMES``) it is started with

    def environment(self) -> dict[str, str]:
        """The environment it starts with: the stack's, less what it must not hold, plus its own."""
        return {**service_env(self.secrets, airflow=self.name.startswith("airflow-")), **self.extra_env()}


def supervised(argv: Callable[[], list[str]], health_url: str | None = None) -> Callable[[], list[str]]:
    """``argv`` run under ``devstack.supervise``, which starts it again whenever it exits unstopped (as compose's
    ``restart: unless-stopped``), or, given ``health_url``, stops answering 200 there for a while; stopping the
    service's session stops both."""
    health = ["--health", health_url] if health_url else []
    return lambda: [str(paths.VENV_BIN / "python"), "-m", "devstack.supervise", *health, *argv()]


# --- Kafka (KRaft, single node) -------------------------------------------------------------

# Log4j 2 properties syntax (the file's extension tells Log4j which syntax to parse). Kafka 4 logs mostly under
# org.apache.kafka, the rest under kafka.
LOG4J2_PROPERTIES = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def kafka_properties(
    broker: int = PORTS["kafka"],
    controller: int = PORTS["kafka-controller"],
    data: Path = paths.KAFKA_DATA,
    partitions: str | None = None,
) -> str:
    """A single-node KRaft broker's configuration: the stack's by default, or a scratch one's for tests."""
    partitions = partitions or os.environ.get("KAFKA_TOPIC_PARTITIONS", "3")
    return f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{broker}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions={partitions}
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
"""


def kafka_java(main: str, *args: str, max_heap: str = "1g") -> list[str]:
    """A java command line running ``main`` of the stack's Kafka installation."""
    return [
        "java",
        "-Xms128m",
        f"-Xmx{max_heap}",
        "-XX:+UseG1GC",
        f"-Dlog4j2.configurationFile={paths.KAFKA_LOG4J}",
        "-cp",
        f"{paths.KAFKA_LIBS}/*",
        main,
        *args,
    ]


def kraft_cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64, never starting with '-' (the storage tool would take
    it for an option; Kafka's own random ids skip those too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _kafka_prepare() -> None:
    paths.KAFKA_CONFIG.write_text(kafka_properties())
    paths.KAFKA_LOG4J.write_text(LOG4J2_PROPERTIES)
    if (paths.KAFKA_DATA / "meta.properties").exists():
        return
    step("formatting Kafka's KRaft storage")
    cluster_id = kraft_cluster_id()
    run_logged(
        kafka_java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(paths.KAFKA_CONFIG)),
        paths.LOGS / "kafka-storage-format.log",
    )


def _kafka_healthy() -> bool:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{PORTS['kafka']}", request_timeout_ms=3000)
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


def _kafka_after_start() -> None:
    from include.records import ENTITIES
    from include.topics import ensure_topics, retention_ms, topic_name

    env = process_env()
    created = ensure_topics(
        f"127.0.0.1:{PORTS['kafka']}",
        [topic_name(env["PINTEREST_TOPIC_PREFIX"], entity) for entity in ENTITIES],
        int(env["KAFKA_TOPIC_PARTITIONS"]),
        retention_ms(os.environ),
    )
    if created:
        step(f"created topics {', '.join(created)}")


# --- MinIO --------------------------------------------------------------------------------


def _minio_env() -> dict[str, str]:
    env = process_env()
    return {"MINIO_ROOT_USER": env["AWS_ACCESS_KEY_ID"], "MINIO_ROOT_PASSWORD": env["AWS_SECRET_ACCESS_KEY"]}


def _minio_argv() -> list[str]:
    return [
        str(paths.MINIO_BIN),
        "server",
        str(paths.MINIO_DATA),
        "--quiet",
        "--address",
        f"127.0.0.1:{PORTS['minio']}",
        "--console-address",
        f"127.0.0.1:{PORTS['minio-console']}",
    ]


def _minio_after_start() -> None:
    from include.settings import PlatformSettings

    env = process_env()
    s3 = PlatformSettings.model_validate(env).s3_client()
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if env["LAKE_BUCKET"] not in existing:
        s3.create_bucket(Bucket=env["LAKE_BUCKET"])
        step(f"created bucket {env['LAKE_BUCKET']}")


# --- Airflow ------------------------------------------------------------------------------


def airflow_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the airflow CLI with the stack's environment."""
    return subprocess.run(
        [str(paths.VENV_BIN / "airflow"), *args],
        env=process_env(),
        check=check,
        text=True,
        capture_output=True,
    )


def migration_marker(database_url: str, airflow_version: str) -> str:
    """What the migration stamp holds: a hash of the database URL (it may hold a password) and Airflow's version."""
    return hashlib.sha256(f"{database_url} {airflow_version}".encode()).hexdigest()


def sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite database URL; None for another database or an in-memory one."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def needs_migration(stamp: Path, database_url: str, airflow_version: str) -> bool:
    """Whether to run ``airflow db migrate``: no stamp of this database and Airflow, or its SQLite file is gone."""
    database = sqlite_file(database_url)
    if database is not None and not database.exists():
        return True
    return not stamp.exists() or stamp.read_text() != migration_marker(database_url, airflow_version)


def _airflow_prepare() -> None:
    write_airflow_passwords()
    stamp = paths.AIRFLOW_HOME / ".migrated"
    database_url, airflow_version = process_env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], _airflow_version()
    if not needs_migration(stamp, database_url, airflow_version):
        return
    step("migrating Airflow's metadata database")
    result = airflow_cli("db", "migrate", check=False)
    if result.returncode != 0:
        raise processes.StackError(f"airflow db migrate failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    write_private_file(stamp, migration_marker(database_url, airflow_version))


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow")


class HealthUnknown(Exception):
    """The api-server, which reports the health of the other Airflow components, does not answer."""


def _airflow_component_healthy(component: str, reported_by_itself: bool = False) -> Callable[[], bool]:
    """Health of one Airflow component as the api-server reports it (heartbeats in the metadata database).

    When the api-server does not answer, that is its own ill health (``reported_by_itself``), and HealthUnknown for
    the others.
    """

    def check() -> bool:
        url = f"http://127.0.0.1:{PORTS['airflow']}/api/v2/monitor/health"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                health = json.load(resp)
        except OSError as error:  # refused, timed out, or an HTTP error status
            if reported_by_itself:
                raise
            raise HealthUnknown(f"the api-server does not answer at {url}: {error}") from error
        return (health.get(component) or {}).get("status") == "healthy"

    return check


def _airflow(*args: str) -> Callable[[], list[str]]:
    return lambda: [str(paths.VENV_BIN / "airflow"), *args]


def _supervised_airflow(*args: str) -> Callable[[], list[str]]:
    """An Airflow component that is started again whenever it exits unstopped."""
    return supervised(_airflow(*args))


SCHEDULER_HEALTH_URL = f"http://127.0.0.1:{AIRFLOW_SCHEDULER_HEALTH}/health"
"""The scheduler's health server: 200 while its job heartbeats (``_scheduler_env``), which its supervisor watches."""


def _scheduler_env() -> dict[str, str]:
    """The scheduler's health server (``ENABLE_HEALTH_CHECK``) on loopback, not on every interface."""
    return {
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(AIRFLOW_SCHEDULER_HEALTH),
    }


# Every Airflow process shares the key that signs and checks the tokens of the execution and REST APIs.
AIRFLOW_SIGNING = frozenset({"AIRFLOW__API_AUTH__JWT_SECRET"})


# --- the stack, in start order -------------------------------------------------------------

# Every service runs under the supervisor, as compose restarts every long-running one (`restart: unless-stopped`).
# Kafka and MinIO too: while either is down the API answers 503 or the DAG's tasks fail, and nothing else would start
# it again before someone runs `make up`. Restarting them is safe: a restarted broker or MinIO finds its topics or
# bucket in its data directory (the after_start of `make up` is not needed again), and the API reconnects by itself.
# `devstack stop` and `make down` signal the service's whole session, supervisor included, so a stopped service stays
# stopped (tests/api/test_kafka_outage.py relies on that). A crash that a restart does not mend (a broken data
# directory, say) is given up after supervise.MAX_RESTARTS restarts, and the service then shows as stopped.

SERVICES: tuple[Service, ...] = (
    Service(
        "kafka",
        (PORTS["kafka"], PORTS["kafka-controller"]),
        f"127.0.0.1:{PORTS['kafka']} (KRaft)",
        supervised(lambda: kafka_java("kafka.Kafka", str(paths.KAFKA_CONFIG))),
        _kafka_healthy,
        prepare=_kafka_prepare,
        after_start=_kafka_after_start,
    ),
    Service(
        "minio",
        (PORTS["minio"], PORTS["minio-console"]),
        f"http://127.0.0.1:{PORTS['minio']} (console http://127.0.0.1:{PORTS['minio-console']})",
        supervised(_minio_argv),
        lambda: _http_ok(f"http://127.0.0.1:{PORTS['minio']}/minio/health/live"),
        after_start=_minio_after_start,
        extra_env=_minio_env,
    ),
    Service(
        "airflow-api-server",
        (PORTS["airflow"],),
        f"http://127.0.0.1:{PORTS['airflow']}",
        _supervised_airflow("api-server", "--host", "127.0.0.1", "--port", str(PORTS["airflow"]), "--workers", "1"),
        _airflow_component_healthy("metadatabase", reported_by_itself=True),
        timeout=180,
        prepare=_airflow_prepare,
        secrets=AIRFLOW_SIGNING,
    ),
    # No log servers (they would listen on every interface): all runs on one machine, so the api-server reads the
    # task and trigger logs from their files in AIRFLOW__LOGGING__BASE_LOG_FOLDER.
    Service(
        "airflow-scheduler",
        (AIRFLOW_SCHEDULER_HEALTH,),
        "",
        supervised(_airflow("scheduler", "--skip-serve-logs"), SCHEDULER_HEALTH_URL),
        _airflow_component_healthy("scheduler"),
        extra_env=_scheduler_env,
        secrets=AIRFLOW_SIGNING | {"AIRFLOW_CONN_AWS_DEFAULT"},  # it runs the tasks (LocalExecutor)
    ),
    Service(
        "airflow-dag-processor",
        (),
        "",
        _supervised_airflow("dag-processor"),
        _airflow_component_healthy("dag_processor"),
        secrets=AIRFLOW_SIGNING,
    ),
    Service(
        "airflow-triggerer",
        (),
        "",
        _supervised_airflow("triggerer", "--skip-serve-logs"),
        _airflow_component_healthy("triggerer"),
        secrets=AIRFLOW_SIGNING,
    ),
    Service(
        "api",
        (PORTS["api"],),
        f"http://127.0.0.1:{PORTS['api']} (docs /docs)",
        # One worker, the API's default (docs/api.md), as in docker-compose.yaml and the README's benchmark: the 2 cores
        # are shared with Kafka, MinIO and Airflow. An API_WORKERS of the caller's environment reaches the API.
        supervised(lambda: [str(paths.VENV_BIN / "python"), "-m", "api"]),
        # Ready, not only alive: connected to Kafka and its topics exist (created in Kafka's after_start, above).
        lambda: _http_ok(f"http://127.0.0.1:{PORTS['api']}/ready"),
        secrets=frozenset({"API_KEY"}),  # only when the caller's environment sets one (docs/api.md)
        # where the stack's probes and tools look for it, whatever API_HOST or API_PORT the caller's shell holds
        extra_env=lambda: {"API_HOST": "127.0.0.1", "API_PORT": str(PORTS["api"])},
    ),
)


def service(name: str) -> Service:
    """Look a service up by name."""
    for s in SERVICES:
        if s.name == name:
            return s
    raise processes.StackError(f"unknown service {name!r}; known: {', '.join(s.name for s in SERVICES)}")
