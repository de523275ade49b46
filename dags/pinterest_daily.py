"""
### pinterest_daily

One run per UTC day `[D 00:00, D+1 00:00)`. For each entity (pin, geo, user) it drains
exactly the Kafka records timestamped in that day into `raw/<entity>/dt=D/` of the lake
(record objects, `_manifest.json`, `_SUCCESS` last; invalid messages under `quarantine/`),
then a quality gate writes `_dq.json` next to each manifest and fails the run above its
thresholds. Spark cleaning and analytics follow the gate.

Every run is idempotent: a retry, a manual trigger and a backfill of the same day converge
on the same objects. A day still open (or within the lateness grace) is drained as
`"status": "partial"`; the scheduled run after the day ends makes it `"complete"`.

**Trigger** (UI *Trigger*, keeping its pre-filled logical date "now"): a manual run drains
the last whole UTC day before its logical date, i.e. yesterday. **One chosen day**: backfill
it (below, with `--from-date` = `--to-date`), or over REST (`POST /api/v2/dags/pinterest_daily/dagRuns`)
give the day as the interval and "now" as the logical date, e.g. to drain 2026-11-24:
`{"logical_date": "2026-11-26T09:30:00Z", "data_interval_start": "2026-11-24T00:00:00Z",
"data_interval_end": "2026-11-25T00:00:00Z"}`. A run whose logical date is a midnight other than the
interval's start (`2026-11-25T00:00:00Z`, to which Airflow gives the interval of 2026-11-24) is created
(REST answers 200), but its first task fails at once with `IntervalError`, without retries, whatever the
date and the run type: that midnight is the logical date of the day's scheduled run, and Airflow keeps one
run per logical date, so that day could get no run of its own (a backfill of it would reuse the failed
run, interval and all). Delete such a run, then drain the day as above. The same holds for a run given its
own day's midnight while that day is not over: the day's scheduled run, which drains it complete, would be
skipped.
A run without a logical date has no interval and fails at once, saying so. Unpausing the DAG
starts the run of the latest whole day (yesterday) at once, so a *Trigger* right after it is a second
run of yesterday: its drains wait for the first one's (up to 30 minutes, then retry), and a clean task of
the first run that finds the day drained again by the second retries until the second run's gate has passed it.
Scheduled and backfill runs have the day's start as logical date, while their run ids name when they could run:
`scheduled__2026-11-26T00:00:00+00:00` drains 2026-11-25.

**Backfill** the days 2026-11-01 to 2026-11-03 (both inclusive: the dates are the drained days;
runs stay queued while the DAG is paused; UI: *Backfill*; REST: `POST /api/v2/backfills`):

    airflow backfill create --dag-id pinterest_daily --max-active-runs 1 --reprocess-behavior completed \
        --dag-run-conf '{}' --from-date 2026-11-01 --to-date 2026-11-03

The dates are UTC days: where Airflow's `[core] default_timezone` is not UTC, give them as
`2026-11-01T00:00:00+00:00` (the commands in the tasks' errors do). Without `--reprocess-behavior completed`, days
that already have a finished run are skipped. A day
that has a run is backfilled by clearing that run, which keeps its conf unless the backfill gives one:
`--dag-run-conf '{}'` (or the conf wanted) keeps an old run's `accept_partial` or `lake_bucket` from
applying again.

**Clear** a task of a finished run together with its downstream tasks (the *Clear* dialog's
*Downstream*): a drain cleared alone rewrites the day without the gate and Spark running after it, and a
middle task cleared alone that fails leaves the run green, since Airflow takes a run's state from its
last tasks (here `spark_analytics`).

One day at a time: the analytics of a day read the clean partitions of every earlier day since
`LAKE_FIRST_DAY` (when set; else since the first drained one), and fail (then retry) while one of them
is missing; a day never drained fails them with its backfill command.

**Params**: `topic_prefix` and `lake_bucket` (defaults from the platform settings) isolate
a run, e.g. `{"topic_prefix": "test-abc", "lake_bucket": "scratch"}` as run conf. The topics and the
bucket must exist first. On the local stack, from the repository, after
`eval "$(.venv/bin/python -m devstack env)"` (both scripts leave what exists as it is):

    PYTHONPATH=. PINTEREST_TOPIC_PREFIX=test-abc .venv/bin/python docker/create_topics.py
    PYTHONPATH=. LAKE_BUCKET=scratch .venv/bin/python docker/create_bucket.py

`lake_first_day` (`YYYY-MM-DD`, default `LAKE_FIRST_DAY`; null: the first day any entity drained): the
analytics of a day need every day from it and read none before it.
`lateness_grace_minutes`, `max_quarantine_share` and the quality thresholds tune the checks.
`accept_partial` (default false): a day drained while open whose completing run came after
Kafka had lost part of it fails its drain, since the analytics of every later day wait for it;
rerun that day with `{"accept_partial": true}` to keep it, partial, as final.
`lake_bucket` must be a valid S3 bucket name, `topic_prefix` at most 244 of the characters Kafka allows in
a topic name (`a-z A-Z 0-9 . _ -`), `lateness_grace_minutes` from 1 to 120: a run with another value is
refused when it is created (REST: 400 naming the param, 422 for a backfill).

**Timeouts**: a try of `wait_for_late_records` (one poke) may take 10 minutes, a drain or the quality
gate 2 hours, each Spark job 4 hours (several times what a big day needs, plus the hour a job may wait
for a day another run is writing); a try that runs longer fails
and is retried like any other failure (Airflow calls the task's `on_kill`: the Spark tasks kill their
spark-submit). The sensor itself gives up, without retry, 3 hours after its first poke (the longest grace
plus an hour). Without them a hung task would hold its run for ever, and three such runs would stop the
scheduler creating runs (`max_active_runs`); with `catchup=False` the days in between would get none.

**Assets**: the quality gate, once the day has passed it, emits `pinterest_raw_<entity>` (of the bucket
written) with the day (`dt`), `bucket`, `status` (`complete`|`partial`), `records` and `outcome`
(`drained` by this run, `drained_by_other_run` when another run of the day drained it again before this run's
gate, or `kept_existing` when it kept an earlier run's partition); the Spark tasks emit
`pinterest_clean_<entity>` and `pinterest_analytics` with `dt`, `bucket` and the `status` of the raw day
they used (for the analytics: `partial` when any entity's day is). The analytics of a day are published as one
unit in `analytics/_published/dt=<day>/_manifest.json`, written after the nine results.

Connections: `kafka_default` (its extra is the drains' whole Kafka client config: `bootstrap.servers`, and
`security.protocol`, `sasl.*`, `ssl.*` as the cluster needs; the drain sets its consumer's own keys, e.g. `group.id`,
itself; secret values are masked in the log), `aws_default` (S3/MinIO; what it leaves out, its
endpoint or region, comes from `S3_ENDPOINT_URL` and `AWS_DEFAULT_REGION`, and without keys the drain's boto3 and
Spark's s3a use their own credential chains: `AWS_*`, a profile, a role; `docs/spark.md`) and `spark_default`
(the Spark master: `local[*]` locally, `spark://spark-master:7077` in compose).
Details: `docs/drain.md`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TaskGroup, task

from include.backfill import ANALYTICS_TASK_ID, CLEAN_TASK_ID, DAG_ID
from include.lake import S3_BUCKET_PATTERN
from include.records import ENTITIES, Entity
from include.settings import PlatformSettings
from include.topics import TOPIC_PREFIX_MAX_LENGTH, TOPIC_PREFIX_PATTERN, topic_name
from plugins.lake_assets import emit, lake_alias, lake_asset
from plugins.lake_spark import ANALYTICS_JOB, CLEAN_JOB, LakeSparkSubmitOperator

if TYPE_CHECKING:
    from include.drain import Interval
    from include.drain.quality import QualityReport

SETTINGS = PlatformSettings()

# Kafka timestamps start at the epoch, so no day the drain can hold is before it: a manual run of any day gets
# its tasks (Airflow creates none for a logical date before the start date). catchup=False: no runs for the past.
START_DATE = datetime(1970, 1, 1, tzinfo=UTC)

GRACE_MIN_MINUTES = 1
"""The shortest lateness grace: the API stamps a record when it accepts it, and Kafka has it up to the API's
KAFKA_DELIVERY_TIMEOUT_MS later (1.8 s by default); a day drained complete at once could miss its last records."""
GRACE_MAX_MINUTES = 120
"""The longest lateness grace: the sensor waits at most the grace once the day is over."""
GRACE_WAIT_TIMEOUT = timedelta(minutes=GRACE_MAX_MINUTES + 60)
"""When the sensor gives up (without retry): the longest grace plus an hour for the scheduler."""
POKE_TIMEOUT = timedelta(minutes=10)
DRAIN_TIMEOUT = timedelta(hours=2)
"""Of one try of a drain or the quality gate; the benchmark drains a million records in seconds."""
DRAIN_LEASE_WAIT = timedelta(minutes=30)
"""How long a drain waits for its day while another run drains it (a second run of the same day), within
DRAIN_TIMEOUT; after it the try fails with PartitionLockedError and is retried."""
RUN_DAY_TEMPLATE = "{{ data_interval_start | ds if data_interval_start is defined else 'no-interval' }}"
"""The run's day in a template; a run without a data interval has none of its keys in the context (the task then
fails with interval_day's message, without retries)."""
SPARK_TIMEOUT = timedelta(hours=4)
"""Of one try of a Spark job; a timeout kills spark-submit (the operator's on_kill) and is retried."""


def _interval(context: dict[str, Any], params: dict[str, Any]) -> Interval:
    """The run's data interval; permanent errors (no interval, another day's midnight or an open day's own as logical
    date, a lake_first_day after the day) fail at once, naming a backfill with the run's ``params`` where one helps."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.backfill import run_conf
    from include.drain import IntervalError, NoIntervalError
    from include.drain.run_checks import run_interval

    first_day = params.get("lake_first_day") and date.fromisoformat(params["lake_first_day"])
    try:
        return run_interval(
            context.get("data_interval_start"),
            context.get("data_interval_end"),
            logical_date=context.get("logical_date"),
            dag_id=context["dag"].dag_id,
            conf=run_conf(params["lake_bucket"], params["topic_prefix"], first_day, context["dag_run"].conf),
            first_day=first_day,
            run_type=context["dag_run"].run_type,
        )
    except (NoIntervalError, IntervalError) as exc:
        raise AirflowFailException(str(exc)) from exc


def _refuse_unknown_conf(context: dict[str, Any]) -> None:
    """Fail at once when the run conf holds a key that is no param of the DAG (its declared ones, not the run's)."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.drain.run_checks import UnknownConfError, refuse_unknown_conf

    try:
        refuse_unknown_conf(context["dag_run"].conf, context["dag"].params)
    except UnknownConfError as exc:
        raise AirflowFailException(str(exc)) from exc


def _raw_extra(report: QualityReport, bucket: str, outcome: str, run_id: str) -> dict[str, Any]:
    """The event of a raw partition that passed the gate: its day, status and records, and the ``outcome`` of this
    run's drain (``drained``, or ``kept_existing``: the partition of an earlier try or run kept; see below). A backfill
    that reprocesses a day reuses its run and run id, so the manifest's run id cannot tell those two apart; but a
    manifest the gate found written by another run than ``run_id`` after this one drained (two runs of one day) is
    ``drained_by_other_run``."""
    if outcome == "drained" and report.manifest_run_id != run_id:
        outcome = "drained_by_other_run"
    return {
        "dt": report.dt.isoformat(),
        "bucket": bucket,
        "status": report.status,
        "records": report.metrics.record_count,
        "outcome": outcome,
    }


def _s3_client() -> Any:
    """The lake's S3 client, where the Spark tasks reach it too (``plugins/lake_s3.py``)."""
    from plugins.lake_s3 import lake_s3_client

    return lake_s3_client("aws_default")


def _kafka_config() -> dict[str, Any]:
    """The drain's Kafka client config: the whole extra of the ``kafka_default`` connection (librdkafka properties:
    ``bootstrap.servers``, ``security.protocol``, ``sasl.*``, ``ssl.*``, ...), its secret values masked in the task's
    log; a missing connection or ``bootstrap.servers`` fails at once (a retry finds neither)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    from include.drain import KafkaConfigError
    from include.drain.kafka_reader import client_config, secret_values

    define = 'e.g. AIRFLOW_CONN_KAFKA_DEFAULT=\'{"conn_type": "kafka", "extra": {"bootstrap.servers": "host:9092"}}\''
    try:
        extra = BaseHook.get_connection("kafka_default").extra_dejson
    except AirflowNotFoundException as exc:
        raise AirflowFailException(f"connection kafka_default is not defined: define it, {define}") from exc
    for secret in secret_values(extra):  # Airflow masks the extra as a whole string only, not each value
        mask_secret(secret)
    try:
        return client_config(extra)
    except KafkaConfigError as exc:
        raise AirflowFailException(f"connection kafka_default: {exc} (the connection's extra): {define}") from exc


with DAG(
    dag_id=DAG_ID,
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=3,
    doc_md=__doc__,
    tags=["pinterest", "drain", "daily"],
    default_args={
        "owner": "data-platform",
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=20),
    },
    params={
        "topic_prefix": Param(
            SETTINGS.topic_prefix,
            type="string",
            minLength=1,
            maxLength=TOPIC_PREFIX_MAX_LENGTH,
            pattern=TOPIC_PREFIX_PATTERN,
            description="Kafka topics are <topic_prefix>.pin|geo|user",
        ),
        "lake_bucket": Param(
            SETTINGS.lake_bucket,
            type="string",
            pattern=S3_BUCKET_PATTERN,
            description="S3 bucket of the lake: 3-63 lowercase letters, digits, dots and hyphens (S3's naming rules)",
        ),
        "lake_first_day": Param(
            SETTINGS.lake_first_day and SETTINGS.lake_first_day.isoformat(),
            type=["null", "string"],
            pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z",
            format="date",  # a real day: 2026-13-45 is refused when the run is created, not by the last task
            description="the lake's first day (YYYY-MM-DD): the analytics of a day need every day from it; "
            "null: from the first day any entity drained (default LAKE_FIRST_DAY)",
        ),
        "lateness_grace_minutes": Param(
            10,
            type="number",
            minimum=GRACE_MIN_MINUTES,
            maximum=GRACE_MAX_MINUTES,
            description="records up to this late still land in their day",
        ),
        "max_quarantine_share": Param(
            0.01, type="number", minimum=0, maximum=1, description="a drain fails above this share of invalid messages"
        ),
        "max_duplicate_key_share": Param(0.5, type="number", minimum=0, maximum=1),
        "min_ind_match_rate": Param(0.9, type="number", minimum=0, maximum=1),
        "min_records": Param(
            0, type="integer", minimum=0, description="the gate fails an entity's day with fewer records than this"
        ),
        "accept_partial": Param(
            False,
            type="boolean",
            description="keep a partial day that Kafka can no longer complete as final, so later analytics go on",
        ),
    },
) as dag:

    @task.sensor(poke_interval=30, timeout=GRACE_WAIT_TIMEOUT, mode="reschedule", execution_timeout=POKE_TIMEOUT)
    def wait_for_late_records(params: dict[str, Any], **context: Any) -> bool:
        """Once the day is over, wait out the lateness grace; an open day is drained at once as partial."""
        _refuse_unknown_conf(context)
        interval = _interval(context, params)
        grace = timedelta(minutes=params["lateness_grace_minutes"])
        return interval.seconds_to_wait(datetime.now(UTC), grace) == 0

    drained: dict[str, Any] = {}  # per entity, its drain task's result, for the gate
    with TaskGroup("drain", tooltip="one drain per entity topic") as drains:
        for entity in ENTITIES:

            @task(task_id=entity, execution_timeout=DRAIN_TIMEOUT)
            def drain_entity(params: dict[str, Any], entity: Entity = entity, **context: Any) -> dict[str, Any]:
                """Drain this entity's topic for the run's day into raw/<entity>/dt=<day>/."""
                import botocore.exceptions
                from airflow.sdk.exceptions import AirflowFailException

                from include.drain import (
                    BadManifestError,
                    BucketRefusedError,
                    CompactedTopicError,
                    DataExpiredError,
                    DrainRequest,
                    DrainSettings,
                    IncompleteDayError,
                    KafkaConfigError,
                    MissingBucketError,
                    MissingTopicError,
                    QuarantineThresholdError,
                    SourceTopicError,
                    drain,
                )

                request = DrainRequest(
                    entity=entity,
                    topic=topic_name(params["topic_prefix"], entity),
                    bucket=params["lake_bucket"],
                    interval=_interval(context, params),
                    run_id=context["run_id"],
                    attempt=context["ti"].try_number,
                    settings=DrainSettings(
                        lateness_grace=timedelta(minutes=params["lateness_grace_minutes"]),
                        max_quarantine_share=params["max_quarantine_share"],
                        accept_partial=params["accept_partial"],
                        lease_wait_seconds=DRAIN_LEASE_WAIT.total_seconds(),
                    ),
                )
                try:
                    result = drain(_s3_client(), _kafka_config(), request)
                except (
                    BadManifestError,
                    BucketRefusedError,
                    CompactedTopicError,
                    DataExpiredError,
                    IncompleteDayError,
                    KafkaConfigError,  # the client library refuses the connection's extra
                    QuarantineThresholdError,
                    MissingTopicError,
                    MissingBucketError,
                    SourceTopicError,
                    botocore.exceptions.ParamValidationError,  # botocore refused the request before sending it
                ) as exc:
                    # a retry cannot change these
                    raise AirflowFailException(str(exc)) from exc
                return {
                    "outcome": result.outcome,
                    "status": result.status,
                    "records": result.record_count,
                    "quarantined": result.quarantined,
                    "manifest": result.manifest_key,
                }

            drained[entity] = drain_entity()

    @task(execution_timeout=DRAIN_TIMEOUT, outlets=[lake_alias("raw", entity) for entity in ENTITIES])
    def quality_gate(params: dict[str, Any], drained: dict[str, dict[str, Any]], **context: Any) -> dict[str, Any]:
        """Check every entity's raw partition of the day; write _dq.json; fail above the thresholds.

        Once the day has passed, emit each entity's raw Asset event (with its drain's outcome, from ``drained``):
        before, the day is not ready for readers.
        """
        import botocore.exceptions
        from airflow.sdk.exceptions import AirflowFailException

        from include.drain import QualityGateError, QualityThresholds, run_quality_gate

        thresholds = QualityThresholds(
            max_quarantine_share=params["max_quarantine_share"],
            max_duplicate_key_share=params["max_duplicate_key_share"],
            min_ind_match_rate=params["min_ind_match_rate"],
            min_records=params["min_records"],
        )
        bucket = params["lake_bucket"]
        try:
            day = _interval(context, params).day
            reports = run_quality_gate(_s3_client(), bucket, day, context["run_id"], thresholds)
        except (QualityGateError, botocore.exceptions.ParamValidationError) as exc:  # a retry changes neither
            raise AirflowFailException(str(exc)) from exc
        for entity, report in reports.items():
            emit(
                context,
                lake_alias("raw", entity),
                [lake_asset(bucket, "raw", entity)],
                _raw_extra(report, bucket, drained[entity]["outcome"], context["run_id"]),
            )
        return {entity: report.metrics.model_dump() for entity, report in reports.items()}

    gate = quality_gate(drained=drained)

    clean = LakeSparkSubmitOperator(
        task_id=CLEAN_TASK_ID,
        doc_md="Spark: raw/<entity>/dt=<day>/ (files from the manifest) -> clean/<entity>/dt=<day>/ (Parquet).",
        application=CLEAN_JOB,
        bucket="{{ params.lake_bucket }}",
        name="pinterest-clean-" + RUN_DAY_TEMPLATE,
        driver_memory="1g",
        asset_alias=lake_alias("clean"),
        execution_timeout=SPARK_TIMEOUT,
    )
    analytics = LakeSparkSubmitOperator(
        task_id=ANALYTICS_TASK_ID,
        doc_md="Spark: the analytics as of <day> over all clean data up to it -> analytics/<query>/dt=<day>/.",
        application=ANALYTICS_JOB,
        bucket="{{ params.lake_bucket }}",
        name="pinterest-analytics-" + RUN_DAY_TEMPLATE,
        first_day="{{ params.lake_first_day or '' }}",  # per run, as the bucket is
        topic_prefix="{{ params.topic_prefix }}",  # named in the backfill commands of its errors
        # how a clear selects this run; none without a logical date
        logical_date="{{ logical_date.isoformat() if logical_date is defined and logical_date else '' }}",
        driver_memory="1g",
        asset_alias=lake_alias("analytics"),
        execution_timeout=SPARK_TIMEOUT,
    )
    wait_for_late_records() >> drains >> gate >> clean >> analytics
