"""SparkSubmitOperator for the lake's Spark jobs (``spark_jobs/clean.py``, ``spark_jobs/analytics.py``).

At execute time it zips the ``include`` and ``spark_jobs`` packages into a temporary file passed as
``--py-files``, derives the job arguments from the run's data interval, and sets the ``s3a`` options
(endpoint, path-style access, TLS from the URL scheme) from the ``aws_default`` connection's
``endpoint_url`` extra or ``S3_ENDPOINT_URL``. Credentials the connection names travel only in the
environment of the spark-submit process, and s3a then reads them alone (its EnvironmentVariableCredentialsProvider):
never in ``conf`` or arguments, which the operator logs. A connection naming none leaves s3a its own provider chain
(the cluster's s3a keys, the environment, the instance's or container's role), as the drain's boto3 keeps its own.

A timeout (``execution_timeout``) or an external kill makes Airflow call ``on_kill``: the provider kills
spark-submit, and this operator also kills what spark-submit started on this worker (a client-mode driver's
Python outlives its JVM when it is stuck in Python code). The try then fails and is retried.

The master comes from the Spark connection (``spark_default``): ``local[*]`` locally,
``spark://spark-master:7077`` in docker-compose, with the same code; without that connection the task fails
(the provider would fall back to YARN). For YARN and Kubernetes masters the provider passes ``env_vars`` as
``--conf`` values, and in cluster deploy mode it refuses them, so the operator refuses to send a connection's
credentials there.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import AssetAlias, BaseHook
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException
from airflow.sdk.log import mask_secret

from include.drain.s3_errors import stored_text
from include.job_exits import PERMANENT_EXIT_CODES
from include.lake import SOURCE_NAME, Zone, partition_prefix, publication_key
from include.records import ENTITIES
from include.settings import platform_settings
from plugins.lake_assets import emit, lake_asset
from plugins.lake_s3 import lake_access, lake_connection, lake_credentials, lake_s3_client, names_credentials

REPO_ROOT = Path(__file__).resolve().parents[1]
CLEAN_JOB = str(REPO_ROOT / "spark_jobs" / "clean.py")
ANALYTICS_JOB = str(REPO_ROOT / "spark_jobs" / "analytics.py")
SHIPPED_PACKAGES = ("include", "spark_jobs")
CREDENTIALS_PROVIDER = "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider"
# Spark's INFO lines would bury the job's own log in the task log; a caller's conf wins over this.
DEFAULT_CONF = {"spark.log.level": "WARN"}
CDS_ARCHIVE_ENV = "SPARK_CDS_ARCHIVE"


def class_data_conf(environ: Mapping[str, str]) -> dict[str, str]:
    """The driver JVM option that loads its classes from the class-data archive named by ``SPARK_CDS_ARCHIVE``.

    ``devstack install`` trains the archive (``devstack/spark_cds.py``); without one, or with an
    archive of another Java or pyspark (then the JVM ignores it), jobs start as usual.
    """
    archive = environ.get(CDS_ARCHIVE_ENV)
    if not archive or not Path(archive).is_file():
        return {}
    return {"spark.driver.defaultJavaOptions": f"-XX:SharedArchiveFile={archive} -Xshare:auto"}


def s3a_conf(endpoint_url: str | None, region: str, *, environment_credentials: bool = False) -> dict[str, str]:
    """Spark ``conf`` for s3a: the region, the endpoint when not AWS itself, and, with ``environment_credentials``
    (the operator passes keys in spark-submit's environment), the environment as s3a's only credentials provider,
    so that s3a keys of the cluster's own settings (its ``spark-defaults.conf``), first in s3a's default chain,
    cannot take their place."""
    conf = {"spark.hadoop.fs.s3a.endpoint.region": region}
    if environment_credentials:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = CREDENTIALS_PROVIDER
    if endpoint_url:
        scheme = urlsplit(endpoint_url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"S3 endpoint {endpoint_url!r} must be an http:// or https:// URL")
        conf |= {
            "spark.hadoop.fs.s3a.endpoint": endpoint_url,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": "true" if scheme == "https" else "false",
        }
    return conf


def spark_master(conn_type: str, host: str | None, port: int | None) -> str:
    """The master URL the provider's hook builds from a Spark connection (``yarn`` when there is none)."""
    master = host if conn_type == "spark" and host and ("://" in host or not port) else f"{conn_type}://{host or ''}"
    return f"{master}:{port}" if port else master


def env_vars_become_conf(master: str) -> bool:
    """Whether the provider turns ``env_vars`` into ``--conf`` arguments for this master (its own test)."""
    return "yarn" in master or "k8s" in master


def cluster_mode_refusal(master: str, yarn_resumable: bool = True) -> str | None:
    """Why a Python job's driver cannot run in cluster deploy mode on this master, or None (YARN and Kubernetes run
    it). ``yarn_resumable``: whether the operator can find a YARN application again on a retry, as the provider's
    durable tasks require (``yarn_track_via_rm_api``, or ``durable=False``)."""
    if master.startswith("spark://"):
        return "runs no Python application's driver in cluster deploy mode (Spark supports it on YARN and Kubernetes)"
    if master.startswith("local"):
        return "cannot run a driver in cluster deploy mode"
    if master.startswith("yarn") and not yarn_resumable:
        return (
            "runs the driver in cluster deploy mode only for a task that tracks it through the ResourceManager's "
            "REST API (the Spark provider's durable tasks need it to find the application on a retry): give the "
            "task yarn_track_via_rm_api=True (and yarn_rm_auth as the cluster needs) or durable=False; or else"
        )
    return None


def status_document(text: str) -> dict[str, Any] | None:
    """A ``_source.json`` or publication holding a ``raw_status``, or None when ``text`` is not one."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) and isinstance(document.get("raw_status"), str) else None


def zip_packages(root: Path, packages: Sequence[str], target: Path) -> Path:
    """Write the Python sources of ``packages`` (folders under ``root``) into the zip ``target``."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for package in packages:
            folder = root / package
            if not (folder / "__init__.py").is_file():
                raise FileNotFoundError(f"{folder} is not a Python package (no __init__.py)")
            for source in sorted(folder.rglob("*.py")):
                archive.write(source, source.relative_to(root).as_posix())
    return target


def submitted_processes(submit: subprocess.Popen[Any] | None) -> list[psutil.Process]:
    """The processes a running spark-submit started on this machine (the driver's Python in client mode, its
    workers in local mode); none once it has exited."""
    if submit is None or submit.poll() is not None:
        return []
    try:
        return psutil.Process(submit.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def job_arguments(
    day: str,
    bucket: str,
    entities: Sequence[str] | None = None,
    lake_root: str | None = None,
    run: tuple[str, int] | None = None,
    first_day: str | None = None,
    logical_date: str | None = None,
    topic_prefix: str | None = None,
    lease_wait: float | None = None,
) -> list[str]:
    """The application arguments of a lake job; ``run`` (run id, try) names the holder of the day's lease, and
    ``lease_wait`` how many seconds the job waits for it while another run holds it (the job's default: an hour).

    The analytics job's: ``first_day``, the lake's first day, from which every day must be ready; ``logical_date``,
    the run's (ISO 8601), which its publication records so that later runs can name the command that clears it;
    ``topic_prefix``, the run's topics, which a backfill its errors ask for must drain.
    """
    arguments = ["--date", day, "--bucket", bucket]
    if first_day:
        arguments += ["--first-day", first_day]
    if topic_prefix:
        arguments += ["--topic-prefix", topic_prefix]
    if logical_date:
        arguments += ["--logical-date", logical_date]
    if run:
        arguments += ["--run-id", run[0], "--attempt", str(run[1])]
    if lease_wait is not None:
        arguments += ["--lease-wait", str(lease_wait)]
    if lake_root:
        arguments += ["--lake-root", lake_root]
    if entities:
        unknown = sorted(set(entities) - set(ENTITIES))
        if unknown:
            raise ValueError(f"unknown entities {unknown}; expected some of {list(ENTITIES)}")
        arguments += ["--entity", *entities]
    return arguments


def interval_day(context: Any) -> str:
    """The UTC day of the run's data interval (``YYYY-MM-DD``); a run without an interval fails without retries."""
    start = context.get("data_interval_start")
    if start is None:
        raise AirflowFailException(
            "this run has no data interval (a manual run without a logical date?): "
            "trigger it with a logical date, or pass day= explicitly"
        )
    return start.strftime("%Y-%m-%d")


class LakeSparkSubmitOperator(SparkSubmitOperator):
    """Submit a lake job for one day of the lake.

    :param application: the job file, ``CLEAN_JOB`` or ``ANALYTICS_JOB``.
    :param day: the day (templated); by default the start of the run's data interval.
    :param bucket: the lake bucket (templated); by default ``LAKE_BUCKET``.
    :param entities: for the clean job, the entities to clean (all by default).
    :param lake_root: a URL root replacing ``s3a://<bucket>`` (e.g. ``file:///…``), for local lakes.
    :param first_day: for the analytics job, the lake's first day (``LAKE_FIRST_DAY``; templated).
    :param topic_prefix: for the analytics job, the run's topic prefix (templated), named in the backfill commands
        of its errors.
    :param lease_wait: how many seconds the job waits for its day while another run writes it (the job's default,
        an hour, when None).
    :param aws_conn_id: connection holding the S3 endpoint (extra ``endpoint_url``) and, optionally,
        the credentials (login/password); ``S3_ENDPOINT_URL`` and the process environment otherwise
        (``plugins/lake_s3.py``).
    :param asset_alias: an outlet through which, once the job succeeded, it emits the Assets of the
        datasets it wrote in the bucket it wrote (``lake_assets``), each with the ``status`` of the raw
        partitions it was made from, as the job recorded it (``statuses_used``); not with ``lake_root``.
    """

    template_fields: Sequence[str] = (
        *SparkSubmitOperator.template_fields,
        *("day", "bucket", "lake_root", "first_day", "logical_date", "topic_prefix"),
    )

    def __init__(
        self,
        *,
        application: str,
        day: str | None = None,
        bucket: str | None = None,
        entities: Sequence[str] | None = None,
        lake_root: str | None = None,
        first_day: str | None = None,
        logical_date: str | None = None,
        topic_prefix: str | None = None,
        lease_wait: float | None = None,
        aws_conn_id: str = "aws_default",
        conn_id: str = "spark_default",
        asset_alias: AssetAlias | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("application_args"):
            raise ValueError("the job's arguments come from the operator's own parameters: give no application_args")
        if asset_alias is not None:
            if lake_root is not None:
                raise ValueError("asset_alias names S3 Assets: it cannot be used with a lake_root")
            kwargs["outlets"] = [*kwargs.get("outlets", []), asset_alias]
        super().__init__(application=application, conn_id=conn_id, **kwargs)
        self.asset_alias = asset_alias
        self.day = day
        self.bucket = bucket
        self.entities = tuple(entities) if entities else None
        self.lake_root = lake_root
        self.first_day = first_day
        self.logical_date = logical_date
        self.topic_prefix = topic_prefix
        self.lease_wait = lease_wait
        self.aws_conn_id = aws_conn_id

    def s3_credentials(self) -> dict[str, str]:
        """The credential environment of the connection (``lake_s3``), its secrets masked in the task's log."""
        credentials = lake_credentials(self.aws_conn_id)
        for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            if credentials.get(name):
                mask_secret(credentials[name])
        return credentials

    def master(self) -> str:
        """The master of the Spark connection, as the provider's hook resolves it; a missing connection fails the
        task at once (the hook would fall back to ``yarn``)."""
        try:
            connection = BaseHook.get_connection(self._conn_id)
        except AirflowNotFoundException as exc:
            raise AirflowFailException(
                f"the Spark connection {self._conn_id!r} is not defined: define it with the master as its host "
                f"(local[*] or spark://<host>:7077), e.g. in AIRFLOW_CONN_{self._conn_id.upper()}"
            ) from exc
        return spark_master(connection.conn_type, connection.host, connection.port)

    def driver_runs_here(self) -> bool:
        """Whether the driver runs in this worker (client mode, the default), as the provider's hook decides it."""
        try:
            extra = BaseHook.get_connection(self._conn_id).extra_dejson
        except AirflowNotFoundException:
            extra = {}
        return (self._deploy_mode or extra.get("deploy-mode")) != "cluster"

    def execute(self, context: Any) -> None:
        master = self.master()
        resumable = self._yarn_track_via_rm_api or not self.durable
        if not self.driver_runs_here() and (refusal := cluster_mode_refusal(master, resumable)):
            raise AirflowFailException(
                f"Spark master {master!r} {refusal}: submit in client mode (the default; no deploy_mode, and no "
                f"deploy-mode in the extra of connection {self._conn_id!r})"
            )
        if env_vars_become_conf(master) and names_credentials(self.aws_conn_id):
            raise AirflowFailException(
                f"Spark master {master!r} would put env_vars on the spark-submit command line as --conf values, "
                f"so the S3 credentials of connection {self.aws_conn_id!r} "
                "cannot be passed to it: give the cluster its own S3 credentials and remove those of that "
                "connection (login/password, or the keys, profile or role in its extra)"
            )
        access = lake_access(lake_connection(self.aws_conn_id))
        credentials = self.s3_credentials()
        conf = s3a_conf(access.endpoint_url, access.region, environment_credentials=bool(credentials))
        self.conf = {**DEFAULT_CONF, **class_data_conf(os.environ), **conf, **(self.conf or {})}
        day, bucket = self.day or interval_day(context), self.bucket or platform_settings().lake_bucket
        ti = context.get("ti")
        run = (context["run_id"], ti.try_number) if "run_id" in context and ti is not None else None
        self.application_args = job_arguments(
            day,
            bucket,
            self.entities,
            self.lake_root,
            run,
            self.first_day,
            self.logical_date,
            self.topic_prefix,
            self.lease_wait,
        )
        # In client mode the driver runs here: use this interpreter, which has the platform's dependencies. A
        # driver on a YARN or Kubernetes cluster uses the cluster's Python.
        driver_python = {"PYSPARK_DRIVER_PYTHON": sys.executable} if self.driver_runs_here() else {}
        self.env_vars = {**driver_python, **(self.env_vars or {}), **credentials}
        shipped_by_caller = self.py_files
        with tempfile.TemporaryDirectory(prefix="lake-spark-") as folder:
            archive = zip_packages(REPO_ROOT, SHIPPED_PACKAGES, Path(folder) / "lake_packages.zip")
            self.py_files = ",".join(filter(None, [str(archive), shipped_by_caller]))
            self._hook = None  # built from the fields above
            try:
                super().execute(context)
            except AirflowException as error:
                if (reason := self.no_retry_reason()) is None:
                    raise
                raise AirflowFailException(f"{error} {reason}") from error
            finally:
                self.py_files = shipped_by_caller
        if self.asset_alias is not None:
            statuses = self.statuses_used(bucket, date.fromisoformat(day), run)
            for zone, name in self.datasets_written():
                emit(
                    context,
                    self.asset_alias,
                    [lake_asset(bucket, zone, name)],
                    {"dt": day, "bucket": bucket, "status": statuses[name]},
                )

    def statuses_used(self, bucket: str, day: date, run: tuple[str, int] | None) -> dict[str | None, str | None]:
        """Per dataset written, the ``status`` of the raw data the job used, as it recorded it (by ``aws_conn_id``):
        in the clean partition's ``_source.json``, or in the analytics' publication (the raw manifest may have been
        drained again since). None, with a warning, when that file is gone or was written by another run or try
        since this job (``run``: this try; None when not run by Airflow, and then any writer is taken)."""
        s3 = lake_s3_client(self.aws_conn_id)
        if self.application == ANALYTICS_JOB:
            keys: dict[str | None, str] = {None: publication_key(day)}
        else:
            entities = self.entities or ENTITIES
            keys = {entity: partition_prefix("clean", entity, day) + SOURCE_NAME for entity in entities}
        statuses: dict[str | None, str | None] = {}
        for name, key in keys.items():
            document = status_document(text) if (text := stored_text(s3, bucket, key)) is not None else None
            if document is None:
                self.log.warning("s3://%s/%s is gone or holds no raw_status: its event carries no status", bucket, key)
                statuses[name] = None
                continue
            writer = (document.get("run_id"), document.get("attempt"))
            if run is not None and writer != run:
                self.log.warning(
                    "s3://%s/%s was written by %s since this job: its event carries no status", bucket, key, writer
                )
                statuses[name] = None
            else:
                statuses[name] = document["raw_status"]
        return statuses

    def on_kill(self) -> None:
        """Kill spark-submit as the provider does, then every process it started here (found before: once
        spark-submit is killed they are no longer its children)."""
        started = submitted_processes(getattr(self._hook, "_submit_sp", None))
        super().on_kill()
        for process in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()

    def no_retry_reason(self) -> str | None:
        """Why a failed job is not worth a retry, when spark-submit's exit code says so (``include/job_exits.py``).

        In client mode spark-submit exits with the job's own code; a driver on the cluster exits with Spark's,
        and its failures are retried as any other.
        """
        # the provider's hook keeps spark-submit's process, but not its exit code, once the job failed
        code = getattr(getattr(self._hook, "_submit_sp", None), "returncode", None)
        meaning = PERMANENT_EXIT_CODES.get(code)
        return None if meaning is None else f"The job exited with code {code}: {meaning}. Not retried."

    def datasets_written(self) -> list[tuple[Zone, str | None]]:
        """The lake datasets the job writes: ``analytics``, or ``clean/<entity>`` per cleaned entity."""
        if self.application == ANALYTICS_JOB:
            return [("analytics", None)]
        return [("clean", entity) for entity in self.entities or ENTITIES]
