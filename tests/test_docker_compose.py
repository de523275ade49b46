"""docker-compose.yaml, the Dockerfiles and their helper scripts agree with the code and the local stack.

No Docker engine exists here (and the compose plugin is absent), so the files are parsed and compared with the
settings classes, the local stack's configuration and its pinned versions. The helper scripts the compose services
run (topic and bucket creation, healthchecks, the Airflow password file, the .env generator) run for real, the
first two against the local stack's Kafka and MinIO.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import posixpath
import re
import secrets
import shlex
import stat
import subprocess
import sys
import tomllib
import uuid
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from api import ops
from api.settings import ApiSettings
from devstack import install, paths, versions
from devstack.environment import airflow_env
from devstack.ports import PORTS
from devstack.secrets import GENERATED, read_env_file
from devstack.services import SERVICES as LOCAL_SERVICES
from devstack.services import kafka_properties, kraft_cluster_id
from devstack.services import service as local_service
from include.settings import S3_CLIENT_CONFIG, PlatformSettings
from include.topics import DEFAULT_RETENTION_MS, retention_ms
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parent.parent
COMPOSE_TEXT = (REPO / "docker-compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (REPO / "Dockerfile").read_text()
MINIO_DOCKERFILE = (REPO / "docker" / "minio" / "Dockerfile").read_text()
DOCKERIGNORE = (REPO / ".dockerignore").read_text()

PLATFORM_IMAGE = "pinterest-data-platform:local"
INIT_SERVICES = {"kafka-init", "minio-init", "airflow-init"}
AIRFLOW_PROCESSES = {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
# Services running platform code (include.settings): they need every PlatformSettings variable (but the S3 keys).
PLATFORM_CODE_SERVICES = AIRFLOW_PROCESSES | {"api", "kafka-init", "minio-init", "spark-worker"}
# The S3 keys of the lake as plain variables, and the services whose own code reads them: the bucket creation and
# Spark's executors (s3a's environment credentials provider). No Airflow process: the tasks reach S3 through the
# lake's connection, which only the scheduler holds (as in the local stack). Not the API (the service facing
# clients) nor kafka-init.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
S3_SERVICES = {"minio-init", "spark-worker"}
LAKE_CONNECTION = "AIRFLOW_CONN_AWS_DEFAULT"
# Where the PostgreSQL image keeps its database when PGDATA is not set, per image (postgres 18 moved it).
POSTGRES_PGDATA = {"postgres:17": "/var/lib/postgresql/data"}
# Spark's default for spark.driver.memory, spark.executor.memory and SPARK_DAEMON_MEMORY (the master's and the
# worker's own heap), and the Kafka image's heap when KAFKA_HEAP_OPTS is unset (kafka-server-start.sh: -Xmx1G).
SPARK_DEFAULT_MEMORY = "1g"
KAFKA_IMAGE_HEAP = "1g"
# The first Compose release that passes a value-less `environment:` entry through from .env or the shell and leaves
# it unset otherwise (docker/compose#11965).
PASS_THROUGH_COMPOSE = (2, 29, 0)
# Airflow signs with HS512 (execution API tokens, log requests): a shorter key than the SHA-512 digest is insecure.
HS512_KEY_BYTES = hashlib.sha512().digest_size
# Which service publishes each port of devstack.ports.PORTS (the controller port stays inside the network).
PORT_OWNERS = {
    "kafka": "kafka",
    "minio": "minio",
    "minio-console": "minio",
    "airflow": "airflow-api-server",
    "api": "api",
}
INTERNAL_PORTS = {"kafka-controller"}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY|_KEY_ID|ROOT_USER|LOGIN)$")
REQUIRED_REF = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*):\?[^}]+\}")
# NAME=value in a command line or JVM options; a URL (its password, if any, is a credential).
ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_]\w*)=(?P<value>[^\s;&|'\"]*)")
URL = re.compile(r"[A-Za-z][\w+.-]*://[^\s'\"]+")
# In the compose file's text: a YAML key, a JSON field or a NAME=value, and its value (quoted, or up to a blank),
# looked ahead at: the assignments inside a quoted value (the JSON of a connection) are found too.
TEXT_ASSIGNMENT = re.compile(
    r"""(?P<name>[A-Za-z_][\w.-]*)["']?[ \t]*[:=][ \t]*(?=(?P<value>"[^"]*"|'[^']*'|[^\s"',{}\[\]]*))"""
)
# The Spark standalone daemons the compose services run, from pyspark's own Spark.
SPARK_DAEMONS = {
    "spark-master": "org.apache.spark.deploy.master.Master",
    "spark-worker": "org.apache.spark.deploy.worker.Worker",
}


# --- compose variable interpolation (the subset of the compose spec this project uses) -------------------------

_TOKEN = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$")


class MissingVariableError(KeyError):
    """A ``${VAR:?message}`` whose variable is not set."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """``value`` with ``$$``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?msg}`` resolved."""

    def resolve(match: re.Match[str]) -> str:
        token, name, op, arg = match.group(0), match.group("name"), match.group("op"), match.group("arg")
        if token == "$$":
            return "$"
        if name is None:
            raise ValueError(f"unsupported interpolation syntax in {value!r}")
        if op is None:
            return env.get(name, "")
        if op == ":-":
            return env.get(name) or arg
        if op == "-":
            return env.get(name, arg)
        is_set = bool(env.get(name)) if op == ":?" else name in env
        if is_set:
            return env[name]
        raise MissingVariableError(f"{name}: {arg}")

    return _TOKEN.sub(resolve, value)


def render(node: Any, env: Mapping[str, str]) -> Any:
    """A parsed compose document with every string value interpolated (keys are left alone, as compose does)."""
    if isinstance(node, dict):
        return {key: render(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [render(item, env) for item in node]
    return interpolate(node, env) if isinstance(node, str) else node


def strings(node: Any) -> list[str]:
    """Every string value of a parsed compose document."""
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings(value)]
    if isinstance(node, list):
        return [text for item in node for text in strings(item)]
    return [node] if isinstance(node, str) else []


def required_variables(node: Any) -> dict[str, str]:
    """Every ``${VAR:?message}`` of a parsed compose document: name -> message."""
    return {m["name"]: m["arg"] for text in strings(node) for m in _TOKEN.finditer(text) if m["op"] == ":?"}


# --- helpers ---------------------------------------------------------------------------------------------------


def compose_env_file(text: str) -> dict[str, str]:
    """The values Docker Compose reads from an env file (https://docs.docker.com/compose/env-file/), for files
    without escapes or multi-line values: ``#`` lines skipped; after ``KEY=`` the blanks are dropped, then a quoted
    value is what lies between its quotes, and an unquoted one ends at `` #`` (so ``KEY=   # note`` is ``# note``,
    as compose-go's dotenv parser reads it)."""
    values = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, _, rest = stripped.removeprefix("export ").partition("=")
        rest = rest.lstrip(" \t")
        if rest[:1] in ("'", '"'):
            values[key.strip()] = rest[1 : rest.index(rest[0], 1)]
        else:
            values[key.strip()] = rest.split(" #", 1)[0].rstrip()
    return values


def documented_env_layout() -> str:
    """The `.env` layout docs/docker.md shows (the first code block of its `.env` section)."""
    section = (REPO / "docs" / "docker.md").read_text().split("## The `.env` file", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    return block.group(1)


def environment_reads(folder: Path) -> set[str]:
    """Names of the environment variables the code of ``folder`` reads with ``os.environ`` or ``os.getenv``
    (written literally or as a module-level string constant)."""

    def is_environ(node: ast.expr) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ" and ast.unparse(node.value) == "os"

    names: set[str] = set()
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text())
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name) and isinstance(node.value.value, str)
        }
        for node in ast.walk(tree):
            read: ast.expr | None = None
            if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute):
                func = node.func
                if (func.attr == "get" and is_environ(func.value)) or ast.unparse(func) == "os.getenv":
                    read = node.args[0]
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and is_environ(node.value):
                read = node.slice
            elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
                read = node.left if is_environ(node.comparators[0]) else None
            if read is not None:
                name = read.value if isinstance(read, ast.Constant) else constants.get(ast.unparse(read))
                assert isinstance(name, str), f"{path}:{node.lineno}: variable name not found"
                names.add(name)
    return names


def airflow_package() -> Path:
    """The folder of the installed Airflow package, found without importing it (which would configure Airflow)."""
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.submodule_search_locations
    return Path(spec.submodule_search_locations[0])


def airflow_config() -> dict[str, Any]:
    """Airflow's own configuration description (config_templates/config.yml): section -> its options and defaults."""
    return yaml.safe_load((airflow_package() / "config_templates" / "config.yml").read_text())


def airflow_options() -> dict[str, set[str]]:
    """Section -> option names of Airflow's configuration description."""
    return {section: set(body["options"]) for section, body in airflow_config().items()}


def airflow_setting(env: Mapping[str, str | None], section: str, name: str) -> str:
    """An Airflow option as a process with ``env`` reads it: its ``AIRFLOW__SECTION__NAME``, else Airflow's default."""
    return (
        env.get(f"AIRFLOW__{section.upper()}__{name.upper()}") or airflow_config()[section]["options"][name]["default"]
    )


def job_type(component: str) -> str:
    """The job type Airflow records for a component's heartbeats (``airflow jobs check --job-type``), read from the
    ``job_type`` of its job runner in Airflow's source."""
    source = (airflow_package() / "jobs" / f"{component.replace('-', '_')}_job_runner.py").read_text()
    match = re.search(r'^\s+job_type = "(\w+)"$', source, re.M)
    assert match is not None, f"no job runner for {component}"
    return match.group(1)


def airflow_arguments(command: str | list[str]) -> list[str]:
    """What a command passes to the airflow CLI: the words after its last ``airflow`` (inside ``bash -c`` too)."""
    words = shlex.split(command) if isinstance(command, str) else command
    if words[:2] == ["bash", "-c"]:
        words = shlex.split(words[2])
    starts = [index for index, word in enumerate(words) if Path(word).name == "airflow"]
    assert starts, f"{command} runs no airflow command"
    return words[starts[-1] + 1 :]


def local_airflow_component(name: str) -> str:
    """The Airflow component (CLI command) the local stack's service ``name`` runs."""
    return airflow_arguments(local_service(name).argv())[0]


def run_make_env(path: Path) -> str:
    """Run docker/make_env.py on the env file ``path``; its report."""
    run = [sys.executable, str(REPO / "docker" / "make_env.py"), "--path", str(path)]
    return subprocess.run(run, check=True, capture_output=True, text=True, timeout=60).stdout


def load_script(name: str) -> ModuleType:
    """A script of docker/ imported as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"docker_{name}", REPO / "docker" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_ENV = load_script("make_env")


@pytest.fixture
def private_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local stack's secrets file in ``tmp_path``: building its Airflow environment (``load_secrets``) makes the
    missing secrets there, never in `.stack`."""
    monkeypatch.setattr(paths, "SECRETS_FILE", tmp_path / "secrets.env")
    return paths.SECRETS_FILE


@pytest.fixture(scope="module")
def dot_env() -> dict[str, str]:
    """The variables a fresh `.env` from docker/make_env.py holds."""
    return MAKE_ENV.complete_env({})


@pytest.fixture(scope="module")
def rendered(dot_env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The services as compose sees them with that `.env` and nothing else set."""
    return render(SERVICES, dot_env)


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping"
    return env


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in dockerfile.splitlines() if not line.startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def dockerfile_args(dockerfile: str) -> dict[str, str]:
    return dict(args.split("=", 1) for op, args in instructions(dockerfile) if op == "ARG" and "=" in args)


def platform_stage(dockerfile: str) -> list[tuple[str, str]]:
    """The instructions of the last stage (the image the services run)."""
    steps = instructions(dockerfile)
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def host_port(address: str) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    assert parts.hostname is not None and parts.port is not None, address
    return parts.hostname, parts.port


def kafka_listeners(kafka_env: Mapping[str, str]) -> dict[str, int]:
    """Kafka listener name -> port, from KAFKA_LISTENERS."""
    return {name: int(port) for name, port in re.findall(r"(\w+)://[^:,]*:(\d+)", kafka_env["KAFKA_LISTENERS"])}


def option(command: list[str], flag: str) -> str:
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


def local_airflow_env() -> dict[str, str]:
    """The local stack's Airflow environment (placeholder endpoints and credentials: only names and types count)."""
    placeholders = ("KAFKA_BOOTSTRAP_SERVERS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    return airflow_env({**dict.fromkeys(placeholders, "placeholder"), "S3_ENDPOINT_URL": "http://placeholder:1"})


def connections(env: Mapping[str, str | None]) -> dict[str, dict[str, Any]]:
    """Airflow connection id -> its JSON, from AIRFLOW_CONN_* variables."""
    prefix = "AIRFLOW_CONN_"
    return {key[len(prefix) :].lower(): json.loads(value or "") for key, value in env.items() if key.startswith(prefix)}


def platform_workdir() -> str:
    """Where the platform image keeps the code (its WORKDIR)."""
    return next(args for op, args in platform_stage(DOCKERFILE) if op == "WORKDIR")


def api_settings(env: Mapping[str, str | None]) -> ApiSettings:
    """The API's settings from the variables of its service (but the S3 keys: the API never uses S3)."""
    names = {field.validation_alias for field in ApiSettings.model_fields.values()} - S3_CREDENTIALS
    return ApiSettings(**{name: value for name, value in env.items() if name in names and value is not None})


def expected_healthchecks(rendered: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """The healthcheck each long-running service must run: what probes the address it serves (from its settings,
    its command's ports or Airflow's defaults) and the component it runs."""
    check = ["CMD", "python", f"{platform_workdir()}/docker/healthcheck.py"]
    master, worker = SERVICES["spark-master"]["command"], SERVICES["spark-worker"]["command"]
    database = urlsplit(environment(rendered["airflow-scheduler"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] or "")
    airflow_port = environment(rendered["airflow-api-server"])["AIRFLOW__API__PORT"]
    scheduler = environment(rendered["airflow-scheduler"])
    scheduler_port = airflow_setting(scheduler, "scheduler", "scheduler_health_check_server_port")
    kafka = kafka_listeners(environment(rendered["kafka"]))["INTERNAL"]
    minio = int(option(SERVICES["minio"]["command"], "--address")[1:])
    expected = {
        "kafka": [
            "CMD-SHELL",
            f"/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server kafka:{kafka} > /dev/null",
        ],
        "minio": [
            "CMD",
            "curl",
            "--fail",
            "--silent",
            "--output",
            "/dev/null",
            f"http://localhost:{minio}/minio/health/live",
        ],
        # over TCP, as Airflow connects: the image's temporary init server listens on its socket only
        "postgres": [
            "CMD",
            "pg_isready",
            "--host",
            "127.0.0.1",
            "--port",
            str(database.port),
            "--username",
            database.username,
            "--dbname",
            database.path.lstrip("/"),
        ],
        "spark-master": [*check, f"http://localhost:{option(master, '--webui-port')}/json/", "status=ALIVE"],
        # the master lists this worker alive (its own UI answers before it has registered)
        "spark-worker": [
            *check,
            f"http://{option(master, '--host')}:{option(master, '--webui-port')}/json/",
            f"workers[host={option(worker, '--host')}].state=ALIVE",
        ],
        "airflow-api-server": [
            *check,
            f"http://localhost:{airflow_port}/api/v2/monitor/health",
            "metadatabase.status=healthy",
        ],
        "airflow-scheduler": [*check, f"http://localhost:{scheduler_port}/health"],
        # ready, not only alive: producer connected, Kafka reachable, topics there
        "api": [*check, f"http://localhost:{api_settings(environment(rendered['api'])).port}/ready"],
    }
    for name in ("airflow-dag-processor", "airflow-triggerer"):
        component = job_type(local_airflow_component(name))
        expected[name] = ["CMD", "airflow", "jobs", "check", "--job-type", component, "--local"]
    return expected


def json_credentials(node: Any, where: str) -> dict[str, Any]:
    """The secret-named fields at any depth of a JSON document (a connection, its extra too): place -> value."""
    found: dict[str, Any] = {}
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        place = f"{where}.{key}"
        if isinstance(value, dict | list):
            found |= json_credentials(value, place)
        elif SECRET_NAME.search(str(key).upper()):
            found[place] = value
    return found


def credential_fields(service: dict[str, Any]) -> dict[str, Any]:
    """Where a rendered service holds a credential, place -> value: its secret-named variables, the secret-named
    fields of its Airflow connections, the secret-named ``NAME=value`` of its commands, healthchecks and options,
    and the password of each URL it holds."""
    found: dict[str, Any] = {}
    for key, value in environment(service).items():
        if key.startswith("AIRFLOW_CONN_"):
            found |= json_credentials(json.loads(value or ""), key)
        elif SECRET_NAME.search(key) and value is not None:  # None: passed through from the caller when set
            found[key] = value
    for text in strings(service):
        for match in ASSIGNMENT.finditer(text):
            if SECRET_NAME.search(match["name"].upper()):
                found[f"{match['name']}= in {text!r}"] = match["value"]
        for url in URL.findall(text):
            if urlsplit(url).password is not None:
                found[f"password of {url}"] = urlsplit(url).password
    return found


def literal_credentials(text: str) -> list[str]:
    """The secret-named assignments of a compose file's text (YAML keys, JSON fields, ``NAME=value``, in services,
    extension fields and comments alike) and the URL passwords whose value is neither empty nor one required
    variable ``${NAME:?…}``."""
    masked = REQUIRED_REF.sub(lambda ref: f"<{ref['name']}>", text)
    refs = {f"<{ref['name']}>" for ref in REQUIRED_REF.finditer(text)}
    literal = [
        match.group(0) + match["value"]
        for match in TEXT_ASSIGNMENT.finditer(masked)
        if SECRET_NAME.search(match["name"].upper().replace("-", "_"))
        and match["value"].strip("\"'") not in {"", *refs}
    ]
    passwords = [urlsplit(url).password for url in URL.findall(masked)]
    return literal + [f"URL password {password}" for password in passwords if password not in (None, "", *refs)]


def docker_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker matches it: Go's filepath.Match (``*`` and ``?`` stop at ``/``, ``[…]``
    classes, ``\\`` escapes) plus ``**`` for any number of folders."""
    regex = ""
    for token in re.finditer(r"\*\*/?|\*|\?|\[[^\]]*\]|\\.|.", pattern):
        text = token.group(0)
        if text.startswith("**"):
            regex += ".*" if token.end() == len(pattern) else "(.*/)?"
        elif text == "*":
            regex += "[^/]*"
        elif text == "?":
            regex += "[^/]"
        elif text.startswith("["):
            regex += text
        else:
            regex += re.escape(text[-1])
    return re.compile(regex)


def dockerignore_rules(text: str) -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, is an exception) of each rule of a .dockerignore, in order: ``#`` lines and blank lines skipped, a
    leading ``!`` makes an exception, each pattern is cleaned as a path (``./``, ``//``, leading and trailing ``/``)."""
    rules = []
    for line in text.splitlines():
        rule = line.strip()
        if rule and not rule.startswith("#"):
            pattern = posixpath.normpath(rule.removeprefix("!").strip()).lstrip("/")
            rules.append((docker_pattern(pattern), rule.startswith("!")))
    return rules


def ignored(path: str, rules: list[tuple[re.Pattern[str], bool]]) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out: the last rule matching it or one of its
    folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    left_out = False
    for pattern, exception in rules:
        if any(pattern.fullmatch(candidate) for candidate in candidates):
            left_out = not exception
    return left_out


def copied_files(dockerfile: str) -> set[str]:
    """The files of the build context the COPY instructions of ``dockerfile`` read (Python's bytecode caches aside:
    the image makes its own)."""
    files: set[str] = set()
    for op, args in instructions(dockerfile):
        if op != "COPY" or "--from" in args:
            continue
        for source in [word for word in args.split() if not word.startswith("--")][:-1]:
            matches = list(REPO.glob(source.rstrip("/")))
            assert matches, f"COPY {source}: nothing in the context"
            for match in matches:
                tree = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file()]
                files |= {p.relative_to(REPO).as_posix() for p in tree if "__pycache__" not in p.parts}
    return files


def spark_core_entry(name: str) -> bytes:
    """A file of the spark-core jar bundled with the installed pyspark (the Spark of the image)."""
    (jar,) = paths.pyspark_jars_dir().glob("spark-core_*.jar")
    with zipfile.ZipFile(jar) as archive:
        return archive.read(name)


def image_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The variables the ENV instructions of a stage set, as written (``$VAR`` references kept)."""
    env: dict[str, str] = {}
    for op, args in stage:
        if op == "ENV":
            words = shlex.split(args)
            pairs = [word.split("=", 1) for word in words] if "=" in words[0] else [[words[0], " ".join(words[1:])]]
            env |= dict(pairs)
    return env


def image_user(stage: list[tuple[str, str]]) -> str:
    """The user the image's processes run as (its last USER)."""
    return [args.split(":")[0] for op, args in stage if op == "USER"][-1]


def owned_folders(stage: list[tuple[str, str]], user: str) -> list[tuple[str, bool]]:
    """(folder, recursively) that the ``chown`` commands of the stage's RUN steps give to ``user``."""
    owned = []
    for op, args in stage:
        for command in re.split(r"&&|\|\||;", args) if op == "RUN" else []:
            words = shlex.split(command) if command.split()[:1] == ["chown"] else []
            if words:
                flags = {word for word in words[1:] if word.startswith("-")}
                owner, *folders = [word for word in words[1:] if not word.startswith("-")]
                if owner.split(":")[0] == user:
                    owned += [(folder.rstrip("/"), bool(flags & {"-R", "--recursive"})) for folder in folders]
    return owned


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Volume -> the folder a service mounts it on (short syntax ``source:target[:mode]``)."""
    return dict(mount.split(":")[:2] for mount in service.get("volumes", []))


def spark_mib(size: str) -> int:
    """A Spark memory size (``512m``, ``2g``; a plain number is MiB, as for spark.executor.memory) in MiB."""
    match = re.fullmatch(r"(\d+)([kmgt]?)b?", size.strip().lower())
    assert match is not None, f"{size!r} is no Spark memory size"
    kib = {"k": 1, "m": 1024, "g": 1024**2, "t": 1024**3}[match[2] or "m"]
    return int(match[1]) * kib // 1024


def literal_dict(tree: ast.Module, name: str) -> dict[str, Any]:
    """The dict literal a module assigns to ``name`` at its top level (empty when it assigns none)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def lake_job_memory(role: str) -> list[str]:
    """The memory the driver or the executors (``role``) of each lake Spark task of the DAGs ask for: the
    operator's ``<role>_memory``, else ``spark.<role>.memory`` of its conf or of LakeSparkSubmitOperator's
    DEFAULT_CONF, else Spark's default (read from the source: importing it would configure Airflow)."""
    defaults = literal_dict(ast.parse((REPO / "plugins" / "lake_spark.py").read_text()), "DEFAULT_CONF")
    sizes = []
    for path in (REPO / "dags").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "LakeSparkSubmitOperator":
                keywords = {k.arg: k.value for k in node.keywords}
                conf = {**defaults, **(ast.literal_eval(keywords["conf"]) if "conf" in keywords else {})}
                given = keywords.get(f"{role}_memory")
                fallback = conf.get(f"spark.{role}.memory", SPARK_DEFAULT_MEMORY)
                sizes.append(ast.literal_eval(given) if given is not None else fallback)
    return sizes


def documented_default(name: str) -> str:
    """The value of the commented-out ``# NAME=value`` line of the documented `.env` layout."""
    match = re.search(rf"^# {name}=(.*)$", documented_env_layout(), re.M)
    assert match is not None, f"{name} missing from the .env layout of docs/docker.md"
    return match.group(1)


def local_holders(secret: str) -> set[str]:
    """The local stack's services started with the secret variable ``secret``."""
    return {service.name for service in LOCAL_SERVICES if secret in service.secrets}


def docs_section(title: str) -> str:
    """The text of a section of docs/docker.md, up to the next heading of its level or above."""
    text = (REPO / "docs" / "docker.md").read_text()
    level = title.split(" ", 1)[0]
    body = text.split(f"\n{title}\n", 1)[1]
    end = re.search(rf"^#{{1,{len(level)}}} ", body, re.M)
    return body[: end.start()] if end else body


# --- services, healthchecks, start order -----------------------------------------------------------------------


def test_compose_runs_the_local_stack_services_plus_postgres_spark_and_init_jobs():
    local = {service.name for service in LOCAL_SERVICES}
    assert local <= set(SERVICES)
    assert set(SERVICES) - local == {"postgres", "spark-master", "spark-worker"} | INIT_SERVICES


def test_every_long_running_service_has_a_healthcheck_and_init_jobs_run_once():
    one_shot = {name for name, service in SERVICES.items() if service.get("restart") == "no"}
    assert one_shot == INIT_SERVICES
    for name, service in SERVICES.items():
        if name in one_shot:
            assert "healthcheck" not in service and "ports" not in service, name
            continue
        test = service.get("healthcheck", {}).get("test")
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
        assert not service["healthcheck"].get("disable"), name
        assert service.get("restart") == "unless-stopped", name


def test_each_healthcheck_probes_what_its_service_serves(rendered):
    healthchecks = {
        name: service["healthcheck"]["test"] for name, service in SERVICES.items() if "healthcheck" in service
    }
    assert healthchecks == expected_healthchecks(rendered)
    assert "/ready" in {route.path for route in ops.router.routes}  # the API's readiness, not /health (always ok)


def test_airflow_services_run_their_component_and_the_init_job_migrates():
    for name in AIRFLOW_PROCESSES:
        assert airflow_arguments(SERVICES[name]["command"])[0] == local_airflow_component(name), name
    assert airflow_arguments(SERVICES["airflow-init"]["command"]) == ["db", "migrate"]


def test_spark_services_run_the_standalone_master_and_worker_of_pyspark():
    for name, main_class in SPARK_DAEMONS.items():
        assert SERVICES[name]["command"][:2] == ["spark-class", main_class], name
        assert spark_core_entry(main_class.replace(".", "/") + ".class"), main_class


def test_spark_worker_deletes_the_work_folders_of_finished_applications(rendered):
    options = dict(re.findall(r"-D(\S+?)=(\S*)", environment(rendered["spark-worker"])["SPARK_WORKER_OPTS"] or ""))
    assert options["spark.worker.cleanup.enabled"] == "true"
    assert int(options["spark.worker.cleanup.appDataTtl"]) > 0
    worker_options = spark_core_entry("org/apache/spark/internal/config/Worker$.class")
    for key in options:
        assert key.encode() in worker_options, f"{key} is no option of Spark's worker"
    # the folder cleaned is the one the worker works in, made by the image
    work_dir = option(SERVICES["spark-worker"]["command"], "--work-dir")
    assert any(op == "RUN" and "mkdir" in args and work_dir in args.split() for op, args in platform_stage(DOCKERFILE))


def test_depends_on_waits_for_health_or_successful_completion_without_cycles():
    for name, service in SERVICES.items():
        for target, spec in service.get("depends_on", {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            wanted = "service_completed_successfully" if target in INIT_SERVICES else "service_healthy"
            assert spec == {"condition": wanted}, f"{name} -> {target}"
    started: set[str] = set()
    while len(started) < len(SERVICES):
        ready = {n for n, s in SERVICES.items() if n not in started and set(s.get("depends_on", {})) <= started}
        assert ready, f"dependency cycle among {set(SERVICES) - started}"
        started |= ready


def test_start_order_follows_what_each_process_needs():
    def needs(name: str) -> set[str]:
        return set(SERVICES[name].get("depends_on", {}))

    # `airflow db migrate` runs once before the Airflow processes start in parallel.
    for name in AIRFLOW_PROCESSES:
        assert {"airflow-init", "postgres"} <= needs(name), name
    assert needs("airflow-init") == {"postgres"}
    # Tasks run in the scheduler (LocalExecutor): topics, bucket and a Spark worker must exist first.
    assert {"kafka-init", "minio-init", "spark-worker", "airflow-api-server"} <= needs("airflow-scheduler")
    assert needs("kafka-init") == {"kafka"} and needs("minio-init") == {"minio"}
    assert needs("spark-worker") == {"spark-master"}
    assert {"kafka", "kafka-init"} <= needs("api")


def test_python_services_share_one_image_built_from_the_dockerfile():
    users = {name for name, service in SERVICES.items() if service.get("image") == PLATFORM_IMAGE}
    assert users == AIRFLOW_PROCESSES | INIT_SERVICES | {"api", "spark-master", "spark-worker"}
    for name in users:
        assert SERVICES[name]["build"] == {"context": ".", "dockerfile": "Dockerfile"}, name
        assert SERVICES[name].get("init") is True, name


# --- versions and the images ------------------------------------------------------------------------------------


def test_images_pin_the_local_stack_versions():
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{versions.KAFKA_VERSION}"
    assert dockerfile_args(DOCKERFILE)["HADOOP_VERSION"] == versions.HADOOP_VERSION
    plugin = dockerfile_args(DOCKERFILE)["MAVEN_DEPENDENCY_PLUGIN_VERSION"]
    assert plugin == install.MAVEN_DEPENDENCY_PLUGIN_VERSION
    minio_args = dockerfile_args(MINIO_DOCKERFILE)
    assert (minio_args["MINIO_MODULE"], minio_args["MINIO_VERSION"]) == (versions.MINIO_MODULE, versions.MINIO_VERSION)
    assert SERVICES["minio"]["build"] == {"context": "docker/minio"}


def test_hadoop_version_is_the_one_of_the_hadoop_jars_pyspark_bundles():
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)", (REPO / "requirements.txt").read_text(), re.M))
    assert importlib.metadata.version("pyspark") == pins["pyspark"]  # the pyspark the image installs
    jars = paths.pyspark_jars_dir()
    bundled = sorted(jar.name for jar in jars.glob("hadoop-client-api-*.jar"))
    assert bundled == [f"hadoop-client-api-{versions.HADOOP_VERSION}.jar"]
    assert dockerfile_args(DOCKERFILE)["HADOOP_VERSION"] == versions.HADOOP_VERSION


def test_dockerfile_installs_requirements_with_constraints_on_python_and_java_of_the_project():
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    python = re.search(r">=(\d+\.\d+)", requires)
    assert python is not None
    stage = platform_stage(DOCKERFILE)
    assert re.match(rf"python:{re.escape(python.group(1))}-", stage[0][1])
    copies = " ".join(args for op, args in stage if op == "COPY")
    assert "requirements.txt" in copies and "constraints.txt" in copies
    installs = [args for op, args in stage if op == "RUN" and "pip install" in args]
    assert len(installs) == 1
    assert re.search(r"-r \S*/requirements\.txt", installs[0]) and re.search(r"-c \S*/constraints\.txt", installs[0])
    assert re.search(r"-r \S*/requirements-postgres\.txt", installs[0])
    assert any(op == "RUN" and "openjdk-17-jre-headless" in args for op, args in stage)


def test_dockerfile_builds_the_pyspark_wheel_once_and_installs_it_twice():
    (run,) = [args for op, args in platform_stage(DOCKERFILE) if op == "RUN" and "pip install" in args]
    pip = [shlex.split(step) for step in run.split(" && ") if step.split()[:1] == ["pip"]]
    assert [words[:2] for words in pip] == [["pip", "wheel"], ["pip", "install"], ["pip", "install"]]
    build, main, reinstall = pip
    # the pin of requirements.txt (shlex keeps the quoted command substitution as one word)
    pin = re.findall(r"^pyspark==\S+$", (REPO / "requirements.txt").read_text(), re.M)
    assert len(pin) == 1 and importlib.metadata.version("pyspark") == pin[0].split("==")[1]
    assert build[-1] == "$(grep -E '^pyspark==' /tmp/pins/requirements.txt)"
    assert "--no-deps" in build
    wheels = option(build, "--wheel-dir")
    # the full install finds it there (pip prefers a wheel to the source archive of the same version) ...
    assert option(main, "--find-links") == wheels and "-r" in main
    # ... and pyspark is put back over pyspark-client's copies of its files from that wheel, not from the index
    assert {"--force-reinstall", "--no-deps", "--no-index"} <= set(reinstall)
    assert reinstall[-1] == f"{wheels}/pyspark-*.whl"
    # not kept in the image
    assert run.split(" && ")[-1].strip() == f"rm -rf {wheels}"


def test_postgres_drivers_are_pinned_and_do_not_clash_with_the_constraints():
    constraints = {
        name.lower(): version
        for name, version in re.findall(r"^([\w.-]+)==(\S+)", (REPO / "constraints.txt").read_text(), re.M)
    }
    lines = (REPO / "docker" / "requirements-postgres.txt").read_text().splitlines()
    pins = dict(re.fullmatch(r"([\w.-]+)==(\S+)", line).groups() for line in lines if line and line[0] != "#")
    # Airflow's sync engine uses psycopg2; its async engine maps postgresql:// to postgresql+asyncpg.
    assert set(pins) == {"psycopg2-binary", "asyncpg"}
    for name, version in pins.items():
        assert constraints.get(name, version) == version, name


def test_s3a_jars_come_from_the_local_stack_pom_and_land_in_pyspark():
    steps = instructions(DOCKERFILE)
    assert any(op == "COPY" and args.startswith("devstack/maven/s3a/pom.xml ") for op, args in steps)
    goal = "org.apache.maven.plugins:maven-dependency-plugin:${MAVEN_DEPENDENCY_PLUGIN_VERSION}:copy-dependencies"
    assert any(op == "RUN" and goal in args and "${HADOOP_VERSION}" in args for op, args in steps)
    assert any(op == "RUN" and "pyspark" in args and "ln -s" in args for op, args in platform_stage(DOCKERFILE))


def test_image_holds_the_code_and_scripts_the_services_run(rendered):
    stage = platform_stage(DOCKERFILE)
    workdir = next(args for op, args in stage if op == "WORKDIR")
    copied = {args.split()[-1].rstrip("/") for op, args in stage if op == "COPY" and "--from" not in args}
    assert {"api", "include", "dags", "plugins", "spark_jobs", "docker"} <= copied
    env_lines = " ".join(args for op, args in stage if op == "ENV")
    assert f"PYTHONPATH={workdir}" in env_lines
    for name in AIRFLOW_PROCESSES:
        env = environment(rendered[name])
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == f"{workdir}/dags"
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == f"{workdir}/plugins"
    scripts = set(re.findall(rf"{re.escape(workdir)}/docker/(\w+\.py)", COMPOSE_TEXT))
    assert scripts == {"create_topics.py", "create_bucket.py", "healthcheck.py", "airflow_passwords.py"}
    for script in scripts:
        assert (REPO / "docker" / script).is_file(), script


def test_image_runs_the_services_commands_from_its_venv_first_on_path():
    stage = platform_stage(DOCKERFILE)
    venv = re.search(r"python -m venv (\S+)", " ".join(args for op, args in stage if op == "RUN"))
    assert venv is not None
    path = image_env(stage)["PATH"].split(":")
    assert path[0] == f"{venv.group(1)}/bin" and "$PATH" in path
    # set before the install, whose pip is the venv's
    env_step = next(i for i, (op, args) in enumerate(stage) if op == "ENV" and "PATH=" in args)
    assert env_step < next(i for i, (op, args) in enumerate(stage) if op == "RUN" and "pip install" in args)
    # what the services and their healthchecks run is installed in a venv (the local one has the same pins)
    programs = {
        words[0]
        for service in SERVICES.values()
        if service.get("image") == PLATFORM_IMAGE
        for words in (service["command"], service.get("healthcheck", {}).get("test", ["CMD"])[1:])
        if words
    }
    assert {"python", "airflow", "spark-class"} <= programs
    assert sorted(name for name in programs - {"bash"} if not (paths.VENV_BIN / name).is_file()) == []


def test_image_user_owns_the_folders_the_services_write(rendered):
    stage = platform_stage(DOCKERFILE)
    user = image_user(stage)
    assert user not in ("root", "0")
    assert not [
        name for name, service in SERVICES.items() if service.get("image") == PLATFORM_IMAGE and "user" in service
    ]
    scheduler = environment(rendered["airflow-scheduler"])
    written = {
        image_env(stage)["AIRFLOW_HOME"],  # airflow.cfg
        scheduler["AIRFLOW_HOME"] or "",
        posixpath.dirname(scheduler["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] or ""),
        scheduler["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] or "",  # a volume: it starts with the image's owner
        option(SERVICES["spark-worker"]["command"], "--work-dir"),
    }
    owned = owned_folders(stage, user)

    def is_owned(folder: str) -> bool:
        return any(folder == top or (recursive and folder.startswith(f"{top}/")) for top, recursive in owned)

    assert sorted(folder for folder in written if not is_owned(folder)) == []


@pytest.mark.parametrize(
    ("rules", "path", "left_out"),
    [
        # the examples of https://docs.docker.com/build/concepts/context/#dockerignore-files
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "somedir/temp/file", True),
        ("*/temp*", "temporary.txt", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("temp?", "tempa", True),
        ("temp?", "tempab", False),
        ("**/*.go", "a/b/c.go", True),
        ("**/*.go", "c.go", True),
        ("*.md\n!README.md", "README.md", False),
        ("*.md\n!README.md", "CHANGES.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README-public.md", False),
        ("*.md\nREADME-secret.md\n!README*.md", "README-secret.md", False),
        # a folder's rule covers what is in it; cleaned as a path
        ("/build/", "build/lib/x.py", True),
        ("./docs", "docs/a.md", True),
        ("*", "api/app.py", True),
        ("*\n!api", "api/app.py", False),
    ],
)
def test_dockerignore_rules_are_read_as_docker_reads_them(rules, path, left_out):
    assert ignored(path, dockerignore_rules(f"# comment\n\n{rules}\n")) is left_out


def test_dockerignore_keeps_local_state_and_secrets_out_and_lets_in_what_the_images_copy():
    rules = dockerignore_rules(DOCKERIGNORE)
    local = [paths.SECRETS_FILE, paths.STACK_ENV_FILE, MAKE_ENV.DEFAULT_PATH, REPO / ".venv" / "pyvenv.cfg"]
    for path in [*local, REPO / ".git" / "HEAD"]:
        assert ignored(path.relative_to(REPO).as_posix(), rules), path
    needed = copied_files(DOCKERFILE)
    assert {"requirements.txt", "devstack/maven/s3a/pom.xml", "api/app.py", "docker/healthcheck.py"} <= needed
    assert sorted(path for path in needed if ignored(path, rules)) == []


# --- settings, connections, ports --------------------------------------------------------------------------------


def test_every_platform_setting_is_given_to_the_services_running_platform_code(rendered):
    names = {field.validation_alias for field in PlatformSettings.model_fields.values()}
    assert names >= {"KAFKA_BOOTSTRAP_SERVERS", "LAKE_BUCKET", "S3_ENDPOINT_URL"}
    assert names >= S3_CREDENTIALS
    for name in PLATFORM_CODE_SERVICES:
        env = environment(rendered[name])
        wanted = names if name in S3_SERVICES else names - S3_CREDENTIALS
        assert {n: env.get(n) for n in wanted if env.get(n) is None} == {}, name
        settings = PlatformSettings(**{n: env[n] for n in wanted})
        kafka_host, kafka_port = host_port(settings.kafka_bootstrap_servers)
        assert kafka_host == "kafka"
        assert kafka_port == kafka_listeners(environment(rendered["kafka"]))["INTERNAL"]
        assert host_port(settings.s3_endpoint_url or "") == (
            "minio",
            int(option(SERVICES["minio"]["command"], "--address")[1:]),
        )


def test_unset_platform_settings_fall_back_to_the_code_defaults(rendered):
    env = environment(rendered["api"])
    for field_name in ("topic_prefix", "topic_partitions", "lake_bucket", "aws_region"):
        field = PlatformSettings.model_fields[field_name]
        assert env[field.validation_alias] == str(field.default), field.validation_alias


def test_s3_credentials_are_the_minio_root_credentials_only_where_s3_is_used(rendered, dot_env):
    minio = environment(rendered["minio"])
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == (
        dot_env["MINIO_ROOT_USER"],
        dot_env["MINIO_ROOT_PASSWORD"],
    )
    for name in SERVICES:
        env = environment(rendered[name])
        if name in S3_SERVICES:
            assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
                minio["MINIO_ROOT_USER"],
                minio["MINIO_ROOT_PASSWORD"],
            ), name
        else:
            assert not S3_CREDENTIALS & set(env), f"{name} gets the lake's keys"
    # as in the local stack, where no Airflow process is started with them
    airflow = {service.name for service in LOCAL_SERVICES if service.name.startswith("airflow-")}
    assert airflow and not set().union(*(local_holders(key) for key in S3_CREDENTIALS)) & airflow
    # The code of the services without them never reaches S3; the scan does find the bucket creation's client.
    s3_use = re.compile(r"s3_client|boto3|S3Hook|s3a://")
    assert s3_use.search((REPO / "docker" / "create_bucket.py").read_text())
    kafka_init_code = [REPO / "docker" / "create_topics.py", REPO / "include" / "topics.py"]
    for path in [*(REPO / "api").rglob("*.py"), *kafka_init_code]:
        assert not s3_use.search(path.read_text()), path


def test_lake_connection_reaches_only_the_airflow_process_that_runs_the_tasks(rendered):
    holders = {name for name, service in rendered.items() if LAKE_CONNECTION in environment(service)}
    assert holders == local_holders(LAKE_CONNECTION)
    # LocalExecutor: the tasks run in the scheduler
    assert environment(rendered["airflow-scheduler"])["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert "airflow-scheduler" in holders


def test_code_run_in_the_scheduler_reaches_s3_through_the_lake_connection():
    # The DAG's tasks and the operator make no S3 client of their own (which would read the plain keys) ...
    own_client = re.compile(r"\.s3_client\(|boto3\.(client|resource|Session)\(")
    assert own_client.search((REPO / "docker" / "create_bucket.py").read_text())  # the scan finds one
    # (include/settings.py defines the settings' client: its callers are what counts)
    sources = [path for folder in ("dags", "plugins", "include") for path in (REPO / folder).rglob("*.py")]
    sources.remove(REPO / "include" / "settings.py")
    # (plugins/lake_s3.py takes the settings' client only for a deployment without the connection: compose has it)
    fallback = REPO / "plugins" / "lake_s3.py"
    assert sorted(str(path) for path in sources if path != fallback and own_client.search(path.read_text())) == []
    # ... they use the connection (S3Hook; LakeSparkSubmitOperator hands its keys to spark-submit, whose driver runs
    # in the scheduler)
    assert any(re.search(r"S3Hook\(aws_conn_id=", path.read_text()) for path in sources)


def test_airflow_base_url_is_the_published_address_of_the_api_server(rendered):
    (port,) = SERVICES["airflow-api-server"]["ports"]
    published = f"http://{port['host_ip']}:{port['published']}"
    assert published == f"http://127.0.0.1:{PORTS['airflow']}"
    for name in AIRFLOW_PROCESSES | {"airflow-init"}:
        assert (environment(rendered[name])["AIRFLOW__API__BASE_URL"] or "").rstrip("/") == published, name


def test_kafka_cluster_id_is_a_uuid_in_url_safe_base64(rendered):
    # as Kafka's storage tool takes it: 16 bytes in URL-safe base64 without padding; the local stack makes such ids
    for cluster_id in (environment(rendered["kafka"])["CLUSTER_ID"] or "", documented_default("KAFKA_CLUSTER_ID")):
        assert len(cluster_id) == len(kraft_cluster_id()) and not cluster_id.startswith("-"), cluster_id
        assert re.fullmatch(r"[A-Za-z0-9_-]+", cluster_id), cluster_id
        raw = base64.urlsafe_b64decode(cluster_id + "==")
        assert len(raw) == len(uuid.uuid4().bytes), cluster_id
        assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == cluster_id


def test_kafka_listens_on_every_interface_of_its_container(rendered):
    # Other containers reach INTERNAL and CONTROLLER at kafka's address in the network, and the published port
    # forwards EXTERNAL to that address too: a listener on the container's loopback is reached by none of them.
    binds = re.findall(r"(\w+)://([^:,]*):(\d+)", environment(rendered["kafka"])["KAFKA_LISTENERS"] or "")
    assert {name for name, _, _ in binds} == {"INTERNAL", "EXTERNAL", "CONTROLLER"}
    assert {name: host for name, host, _ in binds if host not in ("", "0.0.0.0")} == {}


def test_data_volumes_are_mounted_where_each_service_keeps_its_data(rendered):
    kafka, postgres = environment(rendered["kafka"]), environment(rendered["postgres"])
    expected = {
        "kafka": {"kafka-data": kafka["KAFKA_LOG_DIRS"]},
        "minio": {"minio-data": option(SERVICES["minio"]["command"], "server")},
        "postgres": {"postgres-data": postgres.get("PGDATA") or POSTGRES_PGDATA[SERVICES["postgres"]["image"]]},
    }
    for name in AIRFLOW_PROCESSES:
        expected[name] = {"airflow-logs": environment(rendered[name])["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]}
    mounts = {name: volume_mounts(service) for name, service in rendered.items() if service.get("volumes")}
    assert mounts == expected
    assert set(COMPOSE["volumes"]) == {volume for mount in mounts.values() for volume in mount}


def test_topic_retention_defaults_to_the_code_default(rendered):
    assert retention_ms(environment(rendered["kafka-init"])) == DEFAULT_RETENTION_MS
    assert int(documented_default("KAFKA_TOPIC_RETENTION_MS")) == DEFAULT_RETENTION_MS


def test_spark_worker_memory_holds_an_executor_of_every_lake_job(rendered):
    executors = lake_job_memory("executor")
    assert len(executors) >= 2  # the DAG's clean and analytics tasks
    worker = spark_mib(environment(rendered["spark-worker"])["SPARK_WORKER_MEMORY"] or "")
    assert worker >= max(spark_mib(size) for size in executors)
    assert spark_mib(documented_default("SPARK_WORKER_MEMORY")) == worker


def test_api_gets_every_setting_it_reads_and_listens_on_the_published_port(rendered):
    env = environment(rendered["api"])
    # its settings class (but the S3 keys: the API never uses S3), and what its code reads from os.environ
    names = {field.validation_alias for field in ApiSettings.model_fields.values()} - S3_CREDENTIALS
    reads = environment_reads(REPO / "api")
    assert "PROMETHEUS_MULTIPROC_DIR" in reads  # the scan finds what api/__main__.py and api/metrics.py read
    assert (names | reads) - set(env) == set()
    given = {name: value for name, value in env.items() if name in names and value is not None}
    settings = ApiSettings(**given)
    assert settings.host == "0.0.0.0"  # the loopback default would be unreachable from outside the container
    assert [p["target"] for p in SERVICES["api"]["ports"]] == [settings.port]
    assert SERVICES["api"]["command"] == ["python", "-m", "api"]


def test_airflow_configuration_matches_the_local_stack(rendered, private_secrets):
    local = local_airflow_env()
    same_value = (
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__PARALLELISM",
        "AIRFLOW__API__PORT",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK",
    )
    envs = {name: environment(rendered[name]) for name in AIRFLOW_PROCESSES | {"airflow-init"}}
    for name, env in envs.items():
        # all of the local stack's Airflow configuration, but the lake's connection (the scheduler's alone)
        assert {key for key in local if key.startswith("AIRFLOW")} - {LAKE_CONNECTION} <= set(env), name
        assert {key: env[key] for key in same_value} == {key: local[key] for key in same_value}, name
        assert int(env["AIRFLOW__CORE__PARALLELISM"] or "") >= 1, name  # Airflow requires at least 1
    # One JWT secret, one [api] secret_key (signed log requests between processes), one database, one Fernet key,
    # one execution API for every process: set in the environment, or each container makes its own airflow.cfg value.
    options = airflow_options()
    shared = (
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    )
    for key in shared:
        _, section, setting = key.lower().split("__")
        assert setting in options[section], f"{key} is no Airflow option"
        assert len({env.get(key) for env in envs.values()}) == 1, key
        assert envs["airflow-scheduler"].get(key), key
    env = envs["airflow-api-server"]
    port = int(env["AIRFLOW__API__PORT"] or "")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-api-server:{port}/execution/"
    assert option(SERVICES["airflow-api-server"]["command"][-1].split(), "--port") == str(port)
    assert [p["target"] for p in SERVICES["airflow-api-server"]["ports"]] == [port]
    database = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] or "")
    assert (database.scheme, database.hostname) == ("postgresql+psycopg2", "postgres")
    assert database.password == environment(rendered["postgres"])["POSTGRES_PASSWORD"]
    assert database.username == environment(rendered["postgres"])["POSTGRES_USER"]


def test_airflow_signing_keys_are_long_enough_for_hs512(rendered):
    import jwt

    env = environment(rendered["airflow-scheduler"])
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        secret = env[key] or ""
        assert len(secret.encode()) >= HS512_KEY_BYTES, key
        with warnings.catch_warnings():
            warnings.simplefilter("error", jwt.InsecureKeyLengthWarning)
            jwt.encode({"sub": "check"}, secret, algorithm="HS512")


def test_task_log_servers_are_reachable_under_the_host_names_airflow_records(rendered):
    # LocalExecutor: tasks run in the scheduler and Airflow records its host name as theirs; a deferred task's
    # trigger log is served by the triggerer. The api-server fetches them there while they run: the host name must
    # be one the compose network resolves, the service name.
    assert environment(rendered["airflow-scheduler"])["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    for name in ("airflow-scheduler", "airflow-triggerer"):
        assert SERVICES[name].get("hostname") == name
    # the name the Spark driver advertises to the executors is the same
    assert (
        environment(rendered["airflow-scheduler"])["SPARK_LOCAL_HOSTNAME"] == SERVICES["airflow-scheduler"]["hostname"]
    )


def test_connections_have_the_local_stack_ids_and_types_and_point_at_compose_services(
    rendered, dot_env, private_secrets
):
    local = connections(local_airflow_env())
    lake = LAKE_CONNECTION.removeprefix("AIRFLOW_CONN_").lower()
    for name in AIRFLOW_PROCESSES:
        env = environment(rendered[name])
        conns = connections(env)
        wanted = {
            cid: c["conn_type"] for cid, c in local.items() if cid != lake or name in local_holders(LAKE_CONNECTION)
        }
        assert {cid: c["conn_type"] for cid, c in conns.items()} == wanted, name
        assert conns["kafka_default"]["extra"] == {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
        assert conns["spark_default"]["host"] == "spark://spark-master:7077"
    env = environment(rendered["airflow-scheduler"])
    aws = connections(env)[lake]
    assert (aws["login"], aws["password"]) == (dot_env["MINIO_ROOT_USER"], dot_env["MINIO_ROOT_PASSWORD"])
    assert aws["extra"] == {
        "endpoint_url": env["S3_ENDPOINT_URL"],
        "region_name": env["AWS_DEFAULT_REGION"],
        "config_kwargs": S3_CLIENT_CONFIG,
    }
    master = SERVICES["spark-master"]["command"]
    assert (option(master, "--host"), option(master, "--port")) == ("spark-master", "7077")
    assert SERVICES["spark-worker"]["command"][-1] == "spark://spark-master:7077"


def test_connection_ids_named_in_the_code_are_defined():
    pattern = re.compile(r"\w*conn_id\s*(?::\s*str\s*)?=\s*[\"'](\w+)[\"']")
    used = {
        conn_id
        for folder in ("dags", "plugins", "include", "spark_jobs")
        for path in (REPO / folder).rglob("*.py")
        for conn_id in pattern.findall(path.read_text())
    }
    assert "aws_default" in used  # the scan finds what the DAG and the plugin name
    assert used <= set(connections(environment(SERVICES["airflow-scheduler"])))


def test_kafka_broker_settings_match_the_local_stack(rendered):
    env = environment(rendered["kafka"])
    local = dict(line.split("=", 1) for line in kafka_properties().splitlines() if "=" in line)
    differ = {
        "listeners",
        "advertised.listeners",
        "controller.quorum.voters",
        "log.dirs",
        "num.partitions",
        "listener.security.protocol.map",
    }
    expected = {"KAFKA_" + key.upper().replace(".", "_"): value for key, value in local.items() if key not in differ}
    assert {key: env.get(key) for key in expected} == expected
    assert env["KAFKA_NUM_PARTITIONS"] == str(PlatformSettings.model_fields["topic_partitions"].default)
    listeners = kafka_listeners(env)
    assert set(listeners) == {"INTERNAL", "EXTERNAL", "CONTROLLER"}
    assert f"INTERNAL://kafka:{listeners['INTERNAL']}" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert f"EXTERNAL://127.0.0.1:{PORTS['kafka']}" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_published_ports_are_the_local_stack_ports_on_loopback():
    assert set(PORT_OWNERS) | INTERNAL_PORTS == set(PORTS)
    published = {
        (name, int(port["published"]), port["host_ip"])
        for name, service in SERVICES.items()
        for port in service.get("ports", [])
    }
    assert published == {(owner, PORTS[key], "127.0.0.1") for key, owner in PORT_OWNERS.items()}
    targets = {
        (name, int(port["published"])): port["target"] for name in SERVICES for port in SERVICES[name].get("ports", [])
    }
    listeners = kafka_listeners(environment(SERVICES["kafka"]))
    assert targets[("kafka", PORTS["kafka"])] == listeners["EXTERNAL"]
    minio = SERVICES["minio"]["command"]
    assert targets[("minio", PORTS["minio"])] == int(option(minio, "--address")[1:])
    assert targets[("minio", PORTS["minio-console"])] == int(option(minio, "--console-address")[1:])


# --- secrets ------------------------------------------------------------------------------------------------------


def test_every_credential_of_the_services_comes_from_the_env_file(rendered, dot_env):
    found = {
        f"{name}: {place}": value
        for name, service in rendered.items()
        for place, value in credential_fields(service).items()
    }
    # the scan sees the known places: variables, connection fields, URL passwords
    for place in ("postgres: POSTGRES_PASSWORD", "airflow-scheduler: AIRFLOW_CONN_AWS_DEFAULT.login"):
        assert place in found, place
    assert any(place.startswith("airflow-init: password of postgresql") for place in found)
    generated = {dot_env[name] for name in MAKE_ENV.GENERATORS}
    assert {place: value for place, value in found.items() if value not in generated} == {}


@pytest.mark.parametrize(
    "text",
    [
        'test: ["CMD-SHELL", "PGPASSWORD=hunter2 pg_isready"]',
        'AIRFLOW_CONN_AWS_DEFAULT: \'{"extra": {"aws_secret_access_key": "abc"}}\'',
        "x-notes: {db_password: hunter2}",
        "API_KEY: ${API_KEY:-abc}",
        "URL: postgresql://airflow:hunter2@postgres/airflow",
    ],
)
def test_literal_credential_scan_finds_literals(text):
    assert literal_credentials(text)


def test_no_credential_is_written_in_the_compose_file():
    assert literal_credentials(COMPOSE_TEXT) == []
    # what docker/make_env.py generates is required where it is used, never given a default
    assert {ref["op"] for ref in _TOKEN.finditer(COMPOSE_TEXT) if ref["name"] in MAKE_ENV.GENERATORS} == {":?"}
    # the local stack's own secrets were not pasted in: those stored (read, never made here) and those of the shell
    stack_secrets = {**read_env_file(paths.SECRETS_FILE), **{n: os.environ[n] for n in GENERATED if os.environ.get(n)}}
    for name, secret in stack_secrets.items():
        assert secret not in COMPOSE_TEXT, name


def test_required_variables_are_the_local_stack_secrets_plus_docker_ones_and_are_documented():
    required = required_variables(COMPOSE)
    assert set(GENERATED) <= set(required)
    assert set(required) == set(MAKE_ENV.GENERATORS)
    assert all(message.strip() for message in required.values())
    docs = (REPO / "docs" / "docker.md").read_text()
    for name in required:
        assert f"{name}=" in docs, f"{name} missing from the .env example of docs/docker.md"


def test_compose_does_not_interpolate_without_the_secrets():
    with pytest.raises(MissingVariableError, match="MINIO_ROOT_USER"):
        render(SERVICES["minio"], {})


def test_make_env_writes_a_private_complete_file_and_keeps_existing_values(tmp_path):
    from cryptography.fernet import Fernet

    path = tmp_path / ".env"
    path.write_text("POSTGRES_PASSWORD=kept-value\nAIRFLOW_PASSWORD=\n")
    run_make_env(path)
    values = compose_env_file(path.read_text())
    assert set(values) == set(required_variables(COMPOSE))
    assert values["POSTGRES_PASSWORD"] == "kept-value"
    assert values["AIRFLOW_PASSWORD"]  # an empty value is replaced
    assert all(re.fullmatch(r"[A-Za-z0-9_=-]+", value) for value in values.values())  # safe inside JSON and URLs
    Fernet(values["AIRFLOW_FERNET_KEY"].encode())  # a valid Fernet key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_text()
    assert run_make_env(path).strip().endswith("already complete")
    assert path.read_text() == before
    render(SERVICES, values)  # every required variable resolves


@pytest.mark.parametrize(
    ("line", "value"),
    [
        # the examples of https://docs.docker.com/compose/env-file/
        ("VAR=VAL", "VAL"),
        ('VAR="VAL"', "VAL"),
        ("VAR='VAL'", "VAL"),
        ("VAR=VAL # comment", "VAL"),
        ("VAR=VAL# not a comment", "VAL# not a comment"),
        ('VAR="VAL # not a comment"', "VAL # not a comment"),
        ('VAR="VAL" # comment', "VAL"),
        ("VAR='$OTHER'", "$OTHER"),
        ("VAR='Let\\'s go!'", "Let's go!"),
        ('VAR="{\\"hello\\": \\"json\\"}"', '{"hello": "json"}'),
        ('VAR="some\\tvalue"', "some\tvalue"),
        ("VAR='some\\tvalue'", "some\\tvalue"),
        # blanks and `export` (compose-go's dotenv parser); the comment of an empty value is the value
        ("  export VAR = VAL  ", "VAL"),
        ("VAR=", ""),
        ("VAR=          # a note", "# a note"),
        ('VAR=""  # a note', ""),
    ],
)
def test_make_env_reads_an_env_file_as_compose_does(line, value):
    assert MAKE_ENV.parse_env(f"# a comment line\n\n{line}\n") == {"VAR": value}


def test_documented_env_layout_leaves_no_comment_as_a_value():
    layout = documented_env_layout()
    required = required_variables(COMPOSE)
    values = compose_env_file(layout)
    # every required variable is there, empty: compose stops on its ${VAR:?} until it is filled in
    assert {name: values.get(name) for name in required} == dict.fromkeys(required, "")
    # an optional line, once uncommented, gives its value and not the comment text
    optional = [line[2:] for line in layout.splitlines() if re.match(r"# [A-Z_]+=", line)]
    assert len(optional) >= 10
    for line in optional:
        assert not next(iter(compose_env_file(line).values())).startswith("#"), line


def test_optional_variables_are_in_the_documented_env_layout():
    defaulted = {ref["name"] for ref in _TOKEN.finditer(COMPOSE_TEXT) if ref["op"] in (":-", "-")}
    passed_through = {
        name for service in SERVICES.values() for name, value in environment(service).items() if value is None
    }
    assert {"SPARK_WORKER_CORES", "API_KEY"} <= defaulted | passed_through
    layout = documented_env_layout()
    assert sorted(name for name in defaulted | passed_through if not re.search(rf"\b{name}\b", layout)) == []


def test_make_env_completes_the_documented_env_layout_and_keeps_its_comments(tmp_path):
    path = tmp_path / ".env"
    layout = documented_env_layout()
    path.write_text(layout)
    run_make_env(path)
    values = compose_env_file(path.read_text())
    for name in required_variables(COMPOSE):
        assert re.fullmatch(r"[A-Za-z0-9_=-]{8,}", values.get(name, "")), name
    assert set(values) == set(required_variables(COMPOSE))  # the optional lines stay commented out
    comments = [line for line in layout.splitlines() if line.startswith("#")]
    assert [line for line in path.read_text().splitlines() if line.startswith("#")] == comments
    render(SERVICES, values)


def test_make_env_replaces_comments_read_as_values_and_short_signing_keys(tmp_path):
    # A file written from the layout docs/docker.md used to show (comments after the empty values), partly filled
    # in, and a JWT secret as short as an earlier make_env.py made them.
    short_jwt = secrets.token_urlsafe(32)
    old_layout = [
        "MINIO_ROOT_USER=          # MinIO root user; also the S3 access key of the platform (AWS_ACCESS_KEY_ID)",
        "MINIO_ROOT_PASSWORD=      # MinIO root password; also AWS_SECRET_ACCESS_KEY (at least 8 characters)",
        'POSTGRES_PASSWORD="#kept-value"      # password of the `airflow` PostgreSQL user (quoted: # is part of it)',
        "AIRFLOW_PASSWORD='kept$value'       # password of the Airflow UI/API login",
        f"AIRFLOW_JWT_SECRET={short_jwt}      # shared by all Airflow processes (signs the execution API tokens)",
        "AIRFLOW_FERNET_KEY=       # encrypts connections/variables stored in Airflow's database",
        "API_KEY='an api key'",
    ]
    path = tmp_path / ".env"
    path.write_text("".join(f"{line}\n" for line in old_layout))
    before = compose_env_file(path.read_text())
    assert before["MINIO_ROOT_USER"].startswith("# MinIO root user")  # what compose would have used
    run_make_env(path)
    lines = path.read_text().splitlines()
    values = compose_env_file(path.read_text())
    assert set(values) == set(required_variables(COMPOSE)) | {"API_KEY"}
    for name in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_API_SECRET_KEY"):
        assert re.fullmatch(r"[A-Za-z0-9_=-]{8,}", values[name]), name
    assert len(values["AIRFLOW_JWT_SECRET"]) >= HS512_KEY_BYTES and values["AIRFLOW_JWT_SECRET"] != short_jwt
    # kept as written: the values that were set, their quoting, the lines of other variables
    assert (values["POSTGRES_PASSWORD"], values["AIRFLOW_PASSWORD"], values["API_KEY"]) == (
        "#kept-value",
        "kept$value",
        "an api key",
    )
    assert set(old_layout[2:4] + old_layout[6:]) <= set(lines)
    # the notes stay, after the new values
    assert any(
        line.endswith("# MinIO root user; also the S3 access key of the platform (AWS_ACCESS_KEY_ID)")
        for line in lines
        if line.startswith(f"MINIO_ROOT_USER={values['MINIO_ROOT_USER']}")
    )
    before_second = path.read_text()
    run_make_env(path)
    assert path.read_text() == before_second


# --- the documentation ---------------------------------------------------------------------------------------------


def test_documented_memory_covers_the_java_heaps_of_the_settings(rendered):
    section = docs_section("## Memory")
    stated = re.search(r"at least about \*\*(\d+) GiB\*\*", section)
    assert stated is not None
    kafka_heap = re.search(
        r"-Xmx(\S+)", environment(rendered["kafka"]).get("KAFKA_HEAP_OPTS") or f"-Xmx{KAFKA_IMAGE_HEAP}"
    )
    assert kafka_heap is not None
    heaps = [
        kafka_heap.group(1),
        *(environment(rendered[name]).get("SPARK_DAEMON_MEMORY") or SPARK_DEFAULT_MEMORY for name in SPARK_DAEMONS),
        environment(rendered["spark-worker"])["SPARK_WORKER_MEMORY"] or "",
        max(lake_job_memory("driver"), key=spark_mib),  # in the scheduler
    ]
    assert int(stated.group(1)) * 1024 >= sum(spark_mib(size) for size in heaps)
    assert "estimate" in section and "not a measurement" in section


def test_documented_extra_spark_worker_has_its_own_host_name():
    block = re.search(r"```yaml\n(.*?)```", docs_section("### More workers"), re.S)
    assert block is not None
    (name, extra), *others = yaml.safe_load(block.group(1))["services"].items()
    assert others == [] and extra["extends"] == {"file": "docker-compose.yaml", "service": "spark-worker"}
    base = SERVICES["spark-worker"]
    host = option(extra["command"], "--host")
    assert host == name != option(base["command"], "--host")
    assert extra["command"] == [host if word == option(base["command"], "--host") else word for word in base["command"]]
    assert extra["environment"] == {"SPARK_LOCAL_HOSTNAME": host}
    check = base["healthcheck"]["test"]
    assert extra["healthcheck"]["test"] == [*check[:-1], f"workers[host={host}].state=ALIVE"]
    assert extra["depends_on"] == base["depends_on"]


def test_docs_require_a_compose_that_leaves_value_less_entries_unset():
    passed_through = [
        name for service in SERVICES.values() for name, value in environment(service).items() if value is None
    ]
    assert "KAFKA_COMPRESSION" in passed_through
    docs = (REPO / "docs" / "docker.md").read_text()
    required = re.search(r"Docker Compose (\d+)\.(\d+)(?:\.(\d+))? or later", docs)
    assert required is not None
    assert tuple(int(part or 0) for part in required.groups()) >= PASS_THROUGH_COMPOSE


def test_an_api_setting_an_older_compose_passes_empty_still_starts_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before Compose 2.29 a value-less entry may reach the container as an empty string: each of the API's must
    then mean its default (KAFKA_COMPRESSION: off, as docs/docker.md says)."""
    from api.settings import ApiSettings

    passed_through = {name for name, value in environment(SERVICES["api"]).items() if value is None}
    settings_names = {str(field.validation_alias) for field in ApiSettings.model_fields.values()}
    assert len(passed_through & settings_names) >= 10
    for name in passed_through & settings_names:
        monkeypatch.setenv(name, "")
    started = ApiSettings()
    assert started.kafka_compression is None and started.workers == 1 and started.api_key is None


# --- the helper scripts, run for real -----------------------------------------------------------------------------


def _script_env(**overrides: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **overrides}


def _run_script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "docker" / name)], env=env, capture_output=True, text=True, timeout=120
    )


def test_kafka_init_creates_the_topics_once_with_partitions_and_retention(stack_env):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    prefix = f"docker-init-{uuid.uuid4().hex[:10]}"
    names = [f"{prefix}.{entity}" for entity in ("pin", "geo", "user")]
    env = _script_env(
        KAFKA_BOOTSTRAP_SERVERS=stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        PINTEREST_TOPIC_PREFIX=prefix,
        KAFKA_TOPIC_PARTITIONS="2",
        KAFKA_TOPIC_RETENTION_MS="123456789",
    )
    admin = KafkaAdminClient(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    try:
        first = _run_script("create_topics.py", env)
        assert first.returncode == 0, first.stderr
        second = _run_script("create_topics.py", env)
        assert second.returncode == 0, second.stderr
        assert second.stderr.count(": exists") == 3
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
        assert described == dict.fromkeys(names, 2)
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, names[0], ["retention.ms"])])
        assert configs["topic"][names[0]]["retention.ms"]["value"] == "123456789"
    finally:
        admin.delete_topics([n for n in names if n in set(admin.list_topics())])
        admin.close()


def test_kafka_init_rejects_a_bad_retention_naming_the_variable(stack_env):
    env = _script_env(KAFKA_BOOTSTRAP_SERVERS=stack_env["KAFKA_BOOTSTRAP_SERVERS"], KAFKA_TOPIC_RETENTION_MS="90d")
    result = _run_script("create_topics.py", env)
    assert result.returncode != 0
    assert "KAFKA_TOPIC_RETENTION_MS" in result.stderr and "'90d'" in result.stderr


def test_minio_init_creates_the_bucket_once(stack_env, s3):
    bucket = f"docker-init-{uuid.uuid4().hex[:10]}"
    env = _script_env(
        **{key: stack_env[key] for key in ("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
        LAKE_BUCKET=bucket,
    )
    try:
        for _ in range(2):
            result = _run_script("create_bucket.py", env)
            assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == f"bucket {bucket}: exists"
        assert bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    finally:
        if bucket in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.delete_bucket(Bucket=bucket)


def test_healthcheck_script_checks_status_and_json_fields(stack_env):
    def check(*args: str) -> int:
        return subprocess.run(
            [sys.executable, str(REPO / "docker" / "healthcheck.py"), *args], capture_output=True, timeout=30
        ).returncode

    health = f"{stack_env['AIRFLOW_API_URL']}/api/v2/monitor/health"
    # one probe with a 5 s timeout, as in compose: a busy machine may miss one answer, a broken script every one
    wait_until(lambda: check(f"{stack_env['API_URL']}/ready") == 0, "the API's readiness check to pass", 60)
    wait_until(lambda: check(health, "metadatabase.status=healthy") == 0, "Airflow's health check to pass", 60)
    assert check(health, "metadatabase.status=sick") == 1
    assert check(health, "no.such.field=x") == 1
    assert check("http://127.0.0.1:9/") == 1  # nothing listens on the discard port


# What Spark 4.3's master answers on /json/ (trimmed), after spark-worker came back (its first registration is
# dead) and with a worker spark-worker-2 gone.
SPARK_MASTER_STATE = {
    "url": "spark://spark-master:7077",
    "workers": [
        {"id": "worker-20261126161125-172.18.0.7-46581", "host": "spark-worker", "port": 46581, "state": "DEAD"},
        {"id": "worker-20261126162010-172.18.0.7-38113", "host": "spark-worker", "port": 38113, "state": "ALIVE"},
        {"id": "worker-20261126161127-172.18.0.8-41207", "host": "spark-worker-2", "port": 41207, "state": "DEAD"},
    ],
    "aliveworkers": 1,
    "status": "ALIVE",
}


@pytest.mark.parametrize(
    ("expectation", "holds"),
    [
        ("status=ALIVE", True),
        ("aliveworkers=1", True),
        ("workers[host=spark-worker].state=ALIVE", True),
        ("workers[host=spark-worker-2].state=ALIVE", False),
        ("workers[host=other].state=ALIVE", False),
        ("workers[id=worker-20261126161127-172.18.0.8-41207].state=DEAD", True),
        ("workers.state=ALIVE", False),  # a list's fields are reached through a selection only
        ("status=DEAD", False),
    ],
)
def test_healthcheck_script_selects_list_elements(expectation, holds):
    failures = load_script("healthcheck").failed_expectations(SPARK_MASTER_STATE, [expectation])
    assert (failures == []) is holds, failures


def test_airflow_passwords_script_writes_a_private_login_file(tmp_path):
    path = tmp_path / "passwords.json"
    env = _script_env(AIRFLOW_PASSWORD="s3cret-value", AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(path))
    env.pop("AIRFLOW_USERNAME", None)
    result = _run_script("airflow_passwords.py", env)
    assert result.returncode == 0, result.stderr
    assert json.loads(path.read_text()) == {"admin": "s3cret-value"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    env.pop("AIRFLOW_PASSWORD")
    result = _run_script("airflow_passwords.py", env)
    assert result.returncode != 0 and "AIRFLOW_PASSWORD" in result.stderr
