"""The environment every process of the local stack runs with, and the `.stack/stack.env` file for tools and tests."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping

from pydantic import ValidationError

from devstack import paths
from devstack.log import step
from devstack.ports import PORTS
from devstack.processes import StackError
from devstack.secrets import GENERATED, load_secrets, read_env_file, write_env_file, write_private_file
from include.settings import S3_CLIENT_CONFIG, PlatformSettings
from include.topics import retention_ms

AIRFLOW_USERNAME = "admin"


def platform_env() -> dict[str, str]:
    """Settings read by include.settings, the API, the DAGs and the tests."""
    s = load_secrets()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{PORTS['kafka']}",
        "PINTEREST_TOPIC_PREFIX": os.environ.get("PINTEREST_TOPIC_PREFIX", "pinterest"),
        "KAFKA_TOPIC_PARTITIONS": os.environ.get("KAFKA_TOPIC_PARTITIONS", "3"),
        "LAKE_BUCKET": os.environ.get("LAKE_BUCKET", "pinterest-lake"),
        "LAKE_FIRST_DAY": os.environ.get("LAKE_FIRST_DAY", ""),
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{PORTS['minio']}",
        "AWS_ACCESS_KEY_ID": s["MINIO_ROOT_USER"],
        "AWS_SECRET_ACCESS_KEY": s["MINIO_ROOT_PASSWORD"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "API_URL": f"http://127.0.0.1:{PORTS['api']}",
        "AIRFLOW_API_URL": f"http://127.0.0.1:{PORTS['airflow']}",
        "AIRFLOW_USERNAME": AIRFLOW_USERNAME,
        "AIRFLOW_PASSWORD": s["AIRFLOW_PASSWORD"],
        "SPARK_CDS_ARCHIVE": str(paths.SPARK_CDS_ARCHIVE),
    }
    refuse_bad_settings(env)
    return env


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """One refused setting in words, naming its variable (the platform's own checks already do)."""
    message = message.removeprefix("Value error, ")
    name = ".".join(map(str, loc))
    return message if message.startswith(name) else f"{name}: {message}"


def refuse_bad_settings(env: Mapping[str, str]) -> None:
    """StackError naming each platform setting of ``env`` that the components would refuse at start, and a topic
    retention Kafka's topics cannot be created with."""
    problems = []
    try:
        PlatformSettings(**env)
    except ValidationError as error:
        problems += [_problem(e["loc"], str(e["msg"])) for e in error.errors()]
    try:
        retention_ms(env)
    except ValueError as error:
        problems.append(str(error))
    if problems:
        raise StackError(f"bad setting: {'; '.join(problems)}") from None


def airflow_env(platform: dict[str, str]) -> dict[str, str]:
    """Airflow's configuration: repo DAGs/plugins, SQLite by default, connections as AIRFLOW_CONN_* JSON."""
    s = load_secrets()
    api = f"http://127.0.0.1:{PORTS['airflow']}"
    # SQLite serialises writers; wait up to a minute for the lock instead of sqlite's 5 s default, since the
    # scheduler, the dag-processor, the api-server and CLI commands such as `backfill create` all write.
    sqlite = f"sqlite:///{paths.AIRFLOW_HOME / 'airflow.db'}?timeout=60"
    db = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", sqlite)
    aws = {
        "conn_type": "aws",
        "login": platform["AWS_ACCESS_KEY_ID"],
        "password": platform["AWS_SECRET_ACCESS_KEY"],
        "extra": {
            "endpoint_url": platform["S3_ENDPOINT_URL"],
            "region_name": platform["AWS_DEFAULT_REGION"],
            "config_kwargs": S3_CLIENT_CONFIG,
        },
    }
    return {
        "AIRFLOW_HOME": str(paths.AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(paths.REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(paths.REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(paths.AIRFLOW_HOME / "passwords.json"),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__PORT": str(PORTS["airflow"]),
        "AIRFLOW__API_AUTH__JWT_SECRET": s["AIRFLOW_JWT_SECRET"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "20",
        # As in docker-compose.yaml; the scheduler serves it on loopback only (devstack.services).
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(paths.AIRFLOW_HOME / "logs"),
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps(
            {"conn_type": "kafka", "extra": {"bootstrap.servers": platform["KAFKA_BOOTSTRAP_SERVERS"]}}
        ),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[*]"}),
    }


# What would point the venv's spark-submit at another Spark (it runs $SPARK_HOME/bin/spark-class whenever SPARK_HOME is
# set), at another configuration or class path (which also voids the class-data archive), or at another Python; and
# the caller's AWS settings (a session token, a profile, a region or endpoint): the stack reaches its lake with its
# own keys only, and MinIO refuses them sent with a caller's session token (s3a and boto3 read it from the environment).
AWS_PREFIX = "AWS_"
FOREIGN_PREFIXES = ("SPARK_", "PYSPARK_", AWS_PREFIX)
FOREIGN_NAMES = frozenset({"HADOOP_CONF_DIR", "YARN_CONF_DIR"})


def without_aws(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without its AWS settings: the lake takes the stack's own keys (the tests' and benchmarks' rule too)."""
    return {k: v for k, v in env.items() if not k.startswith(AWS_PREFIX)}


def without_foreign_tools(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the variables by which a caller's shell would swap another Spark in for the venv's pyspark,
    or other AWS credentials and settings in for the lake's."""
    return {k: v for k, v in env.items() if not k.startswith(FOREIGN_PREFIXES) and k not in FOREIGN_NAMES}


def process_env() -> dict[str, str]:
    """Full environment of a stack process: the caller's (less another Spark's and AWS's), the platform's and
    Airflow's."""
    platform = platform_env()
    return {
        **without_foreign_tools(os.environ),
        **platform,
        **airflow_env(platform),
        "PATH": f"{paths.VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(paths.REPO),
        # Spark's driver (RPC, block manager, UI on 4040) binds to this address, otherwise to every interface.
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


# Variables that carry a secret (the lake's keys, Airflow's admin password and JWT signing key, a connection holding
# the keys, the API's key, and the generated values under their own names, as a caller's shell may set them). A service
# is started with only those it reads (``devstack.services.Service.secrets``).
SECRET_NAMES = frozenset(
    {
        "API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AIRFLOW_PASSWORD",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW_CONN_AWS_DEFAULT",
        *GENERATED,
    }
)
# Airflow's configuration and connections (a database URL may hold a password): for Airflow's processes only.
AIRFLOW_CONFIG_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_")


def service_env(secrets: frozenset[str], *, airflow: bool) -> dict[str, str]:
    """``process_env()`` without the secrets a service does not read; ``secrets`` names those it does.

    Only Airflow's own processes (``airflow``) get Airflow's configuration and connections.
    """
    withheld = SECRET_NAMES - secrets
    return {
        key: value
        for key, value in process_env().items()
        if key not in withheld and (airflow or not key.startswith(AIRFLOW_CONFIG_PREFIXES))
    }


def shell_exports(values: Mapping[str, str]) -> list[str]:
    """``export KEY=value`` lines a POSIX shell reads back unchanged, whatever characters the values hold."""
    return [f"export {key}={shlex.quote(value)}" for key, value in values.items()]


def settle_stack_env(running: bool) -> dict[str, str]:
    """The platform settings, written to `.stack/stack.env` (mode 600) for tools and tests. While the stack runs
    (``running``), those it started with, since its processes keep theirs (a new LAKE_BUCKET, say, would send tools
    and the demo to a lake the DAG does not fill): each one this environment would change is named on stderr."""
    env = platform_env()
    if not (running and paths.STACK_ENV_FILE.exists()):
        write_env_file(paths.STACK_ENV_FILE, env)
        return env
    recorded = read_env_file(paths.STACK_ENV_FILE)
    for name in sorted(env.keys() | recorded.keys()):
        if env.get(name) != recorded.get(name):
            shown = f" {recorded.get(name)!r} (this environment gives {env.get(name)!r})"
            values = "" if name in SECRET_NAMES else shown
            step(f"warning: the running stack keeps its {name}{values}; `make down` first to start it with yours")
    return recorded


# The caller's variables by which platform_env() gives each of its settings a value other than the default.
SHELL_NAMES = {
    "PINTEREST_TOPIC_PREFIX": "PINTEREST_TOPIC_PREFIX",
    "KAFKA_TOPIC_PARTITIONS": "KAFKA_TOPIC_PARTITIONS",
    "LAKE_BUCKET": "LAKE_BUCKET",
    "LAKE_FIRST_DAY": "LAKE_FIRST_DAY",
    "MINIO_ROOT_USER": "AWS_ACCESS_KEY_ID",
    "MINIO_ROOT_PASSWORD": "AWS_SECRET_ACCESS_KEY",
    "AIRFLOW_PASSWORD": "AIRFLOW_PASSWORD",
}


def shell_settings(platform: Mapping[str, str]) -> dict[str, str]:
    """The caller's variables that make ``platform_env()`` give the settings of ``platform`` (a stack.env)."""
    return {shell: platform[name] for shell, name in SHELL_NAMES.items() if name in platform}


def write_airflow_passwords() -> None:
    """The simple auth manager's password file for the admin login."""
    passwords = json.dumps({AIRFLOW_USERNAME: load_secrets()["AIRFLOW_PASSWORD"]})
    write_private_file(paths.AIRFLOW_HOME / "passwords.json", passwords)
