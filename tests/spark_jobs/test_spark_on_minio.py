"""The jobs end to end on the local stack's MinIO, submitted through the operator (spark-submit, s3a), or run in
this process on the tests' Spark session with s3a (to interleave another run's takeover of a job's lease).

Each test works in a bucket of its own (``scratch_bucket``), so it cannot see or disturb other tests.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest
from airflow.exceptions import AirflowException, AirflowFailException
from confluent_kafka import Producer
from pyspark.sql import DataFrameWriter, SparkSession
from rich.console import Console

import demo.__main__
from demo.__main__ import show_analytics
from include.drain import DrainRequest, Interval, drain, run_quality_gate
from include.drain.errors import LockLostError
from include.drain.lock import PartitionLock
from include.emulator.generate import generate_triples
from include.emulator.local_lake import drain_manifest, file_entry
from include.lake import (
    SOURCE_NAME,
    SUCCESS_NAME,
    job_lock_key,
    manifest_key,
    partition_prefix,
    publication_key,
    success_key,
)
from include.records import ENTITIES, kafka_key, kafka_value
from plugins.lake_spark import ANALYTICS_JOB, CLEAN_JOB, LakeSparkSubmitOperator, s3a_conf
from spark_jobs import analytics, clean
from spark_jobs.failures import refuses_data
from tests.minio_sts import temporary_credentials
from tests.waiting import wait_until

DAY = datetime(2026, 11, 24, tzinfo=UTC)
T0 = int(DAY.timestamp() * 1000)


def records(ind: int) -> dict[str, dict[str, Any]]:
    return {
        "pin": {
            "index": ind, "unique_id": f"00000000-0000-0000-0000-{ind:012d}", "title": "t", "description": "d",
            "poster_name": f"p{ind % 3}", "follower_count": f"{ind}k", "tag_list": "a", "is_image_or_video": "image",
            "image_src": "s", "downloaded": 1, "save_location": "Local save in /data/art",
            "category": ("art", "diy", "travel")[ind % 3],
        },
        "geo": {"ind": ind, "timestamp": "2021-03-04 05:06:07", "latitude": 1.0, "longitude": 2.0,
                "country": ("Chad", "Peru")[ind % 2]},
        "user": {"ind": ind, "first_name": "a", "last_name": "b", "age": 20 + ind,
                 "date_joined": "2018-01-02T03:04:05"},
    }  # fmt: skip


def put_raw(s3: Any, bucket: str, entity: str, inds: list[int], reposted: list[int]) -> None:
    """Two objects (one gzipped) listed by the manifest, one object it does not list, ``_SUCCESS``, and the quality
    gate's ``_dq.json`` (the gate itself checks the entity's day)."""
    prefix = partition_prefix("raw", entity, DAY.date())
    batches = [inds, reposted]
    files = []
    for number, batch in enumerate(batches):
        offsets = [100 * number + i for i in range(len(batch))]
        body = "".join(
            json.dumps({"partition": 0, "offset": offset, "timestamp": T0 + offset, "key": str(ind),
                        "value": records(ind)[entity]}) + "\n"
            for offset, ind in zip(offsets, batch, strict=True)
        ).encode()  # fmt: skip
        key = f"{prefix}0-{number:06d}.jsonl" + (".gz" if number else "")
        data = gzip.compress(body) if number else body
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        files.append(file_entry(key, data, 0, offsets))
    stray = json.dumps({"partition": 1, "offset": 0, "timestamp": T0, "key": "999", "value": records(999)[entity]})
    s3.put_object(Bucket=bucket, Key=f"{prefix}stray.jsonl", Body=stray.encode())
    manifest = drain_manifest(entity, DAY.date(), files)
    s3.put_object(Bucket=bucket, Key=manifest_key(entity, DAY.date()), Body=manifest.to_json())
    s3.put_object(Bucket=bucket, Key=success_key(entity, DAY.date()), Body=b"")
    run_quality_gate(s3, bucket, DAY.date(), "gate-run", entities=[entity])


def read_parquet_rows(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    rows = []
    for key in sorted(k for k in keys if k.endswith(".parquet")):
        rows += pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()
    return rows


def assert_analytics_of_inds_1_to_10(s3: Any, bucket: str) -> None:
    """Two of the results of ``DAY`` once ``put_raw`` wrote inds 1 to 10 for each entity and both jobs ran."""
    by_country = read_parquet_rows(s3, bucket, partition_prefix("analytics", "popular_category_by_country", DAY.date()))
    # Chad: inds 2,4,6,8,10 -> travel,diy,art,travel,diy; Peru: 1,3,5,7,9 -> diy,art,travel,diy,art (ties)
    assert sorted((r["country"], r["category"], r["category_count"]) for r in by_country) == [
        ("Chad", "diy", 2),
        ("Peru", "art", 2),
    ]
    joined = read_parquet_rows(s3, bucket, partition_prefix("analytics", "users_joined_by_year", DAY.date()))
    assert joined == [{"post_year": 2018, "number_users_joined": 10}]


def submit(application: str, bucket: str) -> None:
    LakeSparkSubmitOperator(task_id="job", application=application, bucket=bucket).execute({"data_interval_start": DAY})


@pytest.fixture
def spark_connections(stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``spark_default`` on local[2]; ``aws_default`` with only the endpoint (credentials from the environment)."""
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    aws = {"conn_type": "aws", "extra": {"endpoint_url": stack_env["S3_ENDPOINT_URL"]}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(aws))


def test_clean_and_analytics_on_minio_and_rerun_gives_the_same_output(
    s3: Any, scratch_bucket: str, spark_connections: None
) -> None:
    inds = list(range(1, 11))
    reposted = [2, 3]
    for entity in ("pin", "geo", "user"):
        put_raw(s3, scratch_bucket, entity, inds, reposted)

    submit(CLEAN_JOB, scratch_bucket)
    first = {e: read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", e, DAY.date())) for e in ("pin",)}
    submit(CLEAN_JOB, scratch_bucket)
    submit(ANALYTICS_JOB, scratch_bucket)

    pins = read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", "pin", DAY.date()))
    assert sorted(row["ind"] for row in pins) == inds  # one row per record, the stray object not read
    assert {row["ind"]: row["kafka_offset"] for row in pins if row["ind"] in reposted} == {2: 100, 3: 101}
    assert sorted(pins, key=lambda r: r["ind"]) == sorted(first["pin"], key=lambda r: r["ind"])
    for entity in ("geo", "user"):
        rows = read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", entity, DAY.date()))
        assert sorted(row["ind"] for row in rows) == inds
    assert_analytics_of_inds_1_to_10(s3, scratch_bucket)


def test_a_job_reaches_the_lake_with_temporary_credentials_of_the_connection(
    s3: Any, scratch_bucket: str, stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    put_raw(s3, scratch_bucket, "pin", [1, 2, 3], [2])
    issued = temporary_credentials(stack_env)
    temporary = {"conn_type": "aws", "login": issued["AWS_ACCESS_KEY_ID"], "password": issued["AWS_SECRET_ACCESS_KEY"],
                 "extra": {"endpoint_url": stack_env["S3_ENDPOINT_URL"],
                           "aws_session_token": issued["AWS_SESSION_TOKEN"]}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(temporary))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)  # no other keys: s3a and the job's own S3 client get the connection's or none
    clean_pin = LakeSparkSubmitOperator(task_id="job", application=CLEAN_JOB, bucket=scratch_bucket, entities=["pin"])

    clean_pin.execute({"data_interval_start": DAY})

    assert clean_pin._hook._env["AWS_SESSION_TOKEN"] == issued["AWS_SESSION_TOKEN"]
    pins = read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", "pin", DAY.date()))
    assert sorted(row["ind"] for row in pins) == [1, 2, 3]


def test_a_session_token_of_the_workers_environment_does_not_pair_with_the_connections_keys(
    s3: Any, scratch_bucket: str, stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    put_raw(s3, scratch_bucket, "pin", [1, 2, 3], [2])
    keys = {"conn_type": "aws", "login": stack_env["AWS_ACCESS_KEY_ID"], "password": stack_env["AWS_SECRET_ACCESS_KEY"],
            "extra": {"endpoint_url": stack_env["S3_ENDPOINT_URL"]}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(keys))
    monkeypatch.setenv("AWS_SESSION_TOKEN", temporary_credentials(stack_env)["AWS_SESSION_TOKEN"])  # another's

    LakeSparkSubmitOperator(task_id="job", application=CLEAN_JOB, bucket=scratch_bucket, entities=["pin"]).execute(
        {"data_interval_start": DAY}
    )

    pins = read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", "pin", DAY.date()))
    assert sorted(row["ind"] for row in pins) == [1, 2, 3]


class RepublishedWhileRead:
    """An S3 client whose second read of ``key`` finds another text, as when a run of the day republishes it."""

    def __init__(self, s3: Any, key: str) -> None:
        self._s3, self._key, self._reads = s3, key, 0

    def get_object(self, **request: Any) -> dict[str, Any]:
        reply = self._s3.get_object(**request)
        if request["Key"] == self._key:
            self._reads += 1
            if self._reads == 2:
                return {"Body": io.BytesIO(reply["Body"].read().replace(b'"attempt": 1', b'"attempt": 2'))}
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def test_the_demo_shows_the_published_analytics_and_refuses_a_set_that_does_not_match(
    s3: Any, scratch_bucket: str, spark_connections: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for entity in ("pin", "geo", "user"):
        put_raw(s3, scratch_bucket, entity, list(range(1, 11)), [])
    submit(CLEAN_JOB, scratch_bucket)
    submit(ANALYTICS_JOB, scratch_bucket)
    screen = io.StringIO()
    monkeypatch.setattr(demo.__main__, "console", Console(file=screen, width=300))

    show_analytics(s3, scratch_bucket, DAY.date())

    shown = screen.getvalue()
    assert "analytics as of 2026-11-24: run " in shown and "from complete raw data" in shown
    result = partition_prefix("analytics", "users_joined_by_year", DAY.date())
    assert f"users_joined_by_year as of 2026-11-24: 1 rows in s3://{scratch_bucket}/{result}" in shown
    assert "number_users_joined" in shown and shown.count(" rows in s3://") == 9
    assert "the first 12 of" not in shown  # no table here is longer than the 12 rows shown
    # a table longer than what is shown says so, with its row count
    shorter = io.StringIO()
    monkeypatch.setattr(demo.__main__, "console", Console(file=shorter, width=300))
    show_analytics(s3, scratch_bucket, DAY.date(), max_rows=1)
    longer = [int(n) for n in re.findall(r": (\d+) rows in s3://", shorter.getvalue()) if int(n) > 1]
    assert longer, "the fixture has results of several rows"
    assert shorter.getvalue().count("(the first 1 of ") == len(longer)
    assert all(f"(the first 1 of {n} rows, in the order of their values" in shorter.getvalue() for n in longer)
    monkeypatch.setattr(demo.__main__, "console", Console(file=screen, width=300))
    # the same from the command line, which runs nothing else
    assert demo.__main__.main(["--show", "2026-11-24", "--bucket", scratch_bucket]) == 0
    assert screen.getvalue().removeprefix(shown) == shown
    # a run of the day that republishes while the results are read, a result that no longer holds what its
    # publication says, then a day without a publication
    with pytest.raises(SystemExit, match=r"the analytics of 2026-11-24 were rewritten while they were shown"):
        show_analytics(RepublishedWhileRead(s3, publication_key(DAY.date())), scratch_bucket, DAY.date())
    for key in [o["Key"] for o in s3.list_objects_v2(Bucket=scratch_bucket, Prefix=result)["Contents"]]:
        s3.delete_object(Bucket=scratch_bucket, Key=key)
    with pytest.raises(SystemExit, match=rf"{result} holds 0 rows, its publication says 1"):
        show_analytics(s3, scratch_bucket, DAY.date())
    s3.delete_object(Bucket=scratch_bucket, Key=publication_key(DAY.date()))
    with pytest.raises(SystemExit, match=r"the analytics of 2026-11-24 are not published"):
        show_analytics(s3, scratch_bucket, DAY.date())


def test_a_clean_job_waits_for_the_day_while_another_run_writes_it_then_writes_it(
    s3: Any, scratch_bucket: str, spark_connections: None, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    put_raw(s3, scratch_bucket, "pin", [1, 2, 3], [])
    clean_pin = LakeSparkSubmitOperator(
        task_id="job", application=CLEAN_JOB, bucket=scratch_bucket, entities=["pin"], lease_wait=600
    )
    context = {"data_interval_start": DAY, "run_id": "this-run", "ti": SimpleNamespace(try_number=1)}
    lease = PartitionLock(s3, scratch_bucket, job_lock_key("clean-pin", DAY.date()), "other-run", ttl_seconds=120)
    output: list[str] = []
    failures: list[BaseException] = []

    def logged() -> str:
        output.append("".join(capfd.readouterr()))
        return caplog.text + "".join(output)

    def run_job() -> None:
        try:
            clean_pin.execute(context)
        except BaseException as exc:
            failures.append(exc)

    with lease:  # renewed by its heartbeat, as a live run's
        job = threading.Thread(target=run_job)
        job.start()
        wait_until(lambda: "waiting up to" in logged(), "the job to wait for the lease", timeout_s=300)
        assert "is held by 'other-run'" in logged() and job.is_alive()
        assert read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", "pin", DAY.date())) == []
    job.join(timeout=300)

    assert not job.is_alive() and failures == []  # the same try went on once the other run was done
    rows = read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", "pin", DAY.date()))
    assert sorted(row["ind"] for row in rows) == [1, 2, 3]


def test_the_analytics_of_a_day_wait_for_it_as_long_as_told_then_fail_for_a_retry(
    s3: Any, scratch_bucket: str, spark_connections: None, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    for entity in ("pin", "geo", "user"):
        put_raw(s3, scratch_bucket, entity, [1, 2], [])
    submit(CLEAN_JOB, scratch_bucket)
    analytics = LakeSparkSubmitOperator(task_id="job", application=ANALYTICS_JOB, bucket=scratch_bucket, lease_wait=3)
    context = {"data_interval_start": DAY, "run_id": "this-run", "ti": SimpleNamespace(try_number=1)}
    lease = PartitionLock(s3, scratch_bucket, job_lock_key("analytics", DAY.date()), "other-run", ttl_seconds=120)
    joined = partition_prefix("analytics", "users_joined_by_year", DAY.date())

    with lease, pytest.raises(AirflowException):
        analytics.execute(context)

    logged = caplog.text + "".join(capfd.readouterr())
    assert "is held by 'other-run'" in logged and re.search(r"\(this run waited [34]s for it\)", logged)
    assert read_parquet_rows(s3, scratch_bucket, joined) == []
    analytics.execute(context)  # the other run released it: Airflow's retry goes through
    assert read_parquet_rows(s3, scratch_bucket, joined) == [{"post_year": 2018, "number_users_joined": 2}]


# --- the quality gate's report --------------------------------------------------------------------------------------


def produce_day(bootstrap: str, prefix: str, count: int) -> set[str]:
    """``count`` triples of DAY into the entity topics (about 3 % re-posted); the pins' unique ids."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    unique_ids = set()
    for i, triple in enumerate(generate_triples(seed=5, count=count)):
        for entity in ENTITIES:
            record = triple.record(entity)
            producer.produce(f"{prefix}.{entity}", key=kafka_key(entity, record), value=kafka_value(record),
                             timestamp=T0 + i * 1000)  # fmt: skip
        unique_ids.add(str(triple.pin.unique_id))
    assert producer.flush(30) == 0
    return unique_ids


def test_a_day_drained_again_without_its_gate_is_refused_at_once_until_the_gate_checks_it(
    s3: Any, scratch_bucket: str, kafka_topics: str, stack_env: dict[str, str], spark_connections: None, capfd: Any
) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    unique_ids = produce_day(bootstrap, kafka_topics, 30)
    day = Interval.for_day(DAY.date())
    for entity in ENTITIES:
        drain(s3, bootstrap, DrainRequest(entity, f"{kafka_topics}.{entity}", scratch_bucket, day, "scheduled__x"))
    run_quality_gate(s3, scratch_bucket, DAY.date(), "scheduled__x")
    # the drain task of the day cleared alone: the report left names the manifest the drain replaced
    drain(s3, bootstrap, DrainRequest("pin", f"{kafka_topics}.pin", scratch_bucket, day, "scheduled__x", attempt=2))
    clean_pin = LakeSparkSubmitOperator(task_id="job", application=CLEAN_JOB, bucket=scratch_bucket, entities=["pin"])
    context = {"data_interval_start": DAY, "run_id": "scheduled__x", "ti": SimpleNamespace(try_number=1)}
    clean_prefix = partition_prefix("clean", "pin", DAY.date())

    with pytest.raises(AirflowFailException, match="exited with code 65"):  # not retried: the gate ran before it
        clean_pin.execute(context)

    logged = "".join(capfd.readouterr())
    assert "its _dq.json checked another manifest" in logged and "with its downstream tasks" in logged
    assert read_parquet_rows(s3, scratch_bucket, clean_prefix) == []
    run_quality_gate(s3, scratch_bucket, DAY.date(), "scheduled__x")  # the gate cleared with its downstream tasks
    clean_pin.execute(context)
    assert {row["unique_id"] for row in read_parquet_rows(s3, scratch_bucket, clean_prefix)} == unique_ids

    # another run of the day drains it after this run's gate: that run's gate comes next, so this is retried
    drain(s3, bootstrap, DrainRequest("pin", f"{kafka_topics}.pin", scratch_bucket, day, "manual__y"))
    with pytest.raises(AirflowException, match="Error code is: 1") as retried:
        clean_pin.execute(context)
    assert not isinstance(retried.value, AirflowFailException)
    assert "which drain run 'manual__y' has replaced since; a retry cleans the day" in "".join(capfd.readouterr())


# --- a job's lease taken over while it runs (its renewals failed for longer than the lease) ---------------------------


@pytest.fixture
def spark_on_minio(spark: SparkSession, stack_env: dict[str, str]) -> Iterator[SparkSession]:
    """The tests' session reading and writing s3a:// on the stack's MinIO, as the operator configures a job."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    submitted = s3a_conf(stack_env["S3_ENDPOINT_URL"], stack_env["AWS_DEFAULT_REGION"], environment_credentials=True)
    conf = {key.removeprefix("spark.hadoop."): value for key, value in submitted.items()}
    for key, value in conf.items():
        hadoop.set(key, value)
    yield spark
    for key in conf:
        hadoop.unset(key)


def take_over(s3: Any, bucket: str, job: str) -> None:
    """What another run writes when it takes over the job's expired lease of DAY."""
    lease = {"owner": "other-run", "attempt": 1, "ttl_seconds": 120, "nonce": "theirs"}
    s3.put_object(Bucket=bucket, Key=job_lock_key(job, DAY.date()), Body=json.dumps(lease).encode())


def taking_over_after(real: Callable[..., Any], s3: Any, bucket: str, job: str) -> Callable[..., Any]:
    """``real``, after which another run takes over the job's lease."""

    def call(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        take_over(s3, bucket, job)
        return result

    return call


def job_args(bucket: str) -> list[str]:
    return ["--date", DAY.date().isoformat(), "--bucket", bucket, "--run-id", "this-run", "--attempt", "1"]


def test_a_clean_job_whose_lease_is_taken_over_before_it_writes_writes_nothing_and_fails(
    spark_on_minio: SparkSession, s3: Any, scratch_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_raw(s3, scratch_bucket, "pin", [1, 2, 3], [])
    monkeypatch.setattr(clean, "read_raw_partition", taking_over_after(clean.read_raw_partition, s3, scratch_bucket,
                                                                       "clean-pin"))  # fmt: skip

    with pytest.raises(LockLostError, match=r"lost the lease on .*_locks/clean-pin/dt=2026-11-24/lease") as raised:
        clean.main([*job_args(scratch_bucket), "--entity", "pin"])

    assert not refuses_data(raised.value), "a retry cleans the day once the other run is done"
    assert read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", "pin", DAY.date())) == []


@pytest.mark.parametrize("after", ["the Spark write", "_source.json"])  # the renewal after each write fails
def test_a_clean_job_whose_lease_is_taken_over_while_it_writes_fails_and_withdraws_the_days_markers(
    spark_on_minio: SparkSession, s3: Any, scratch_bucket: str, monkeypatch: pytest.MonkeyPatch, after: str
) -> None:
    put_raw(s3, scratch_bucket, "pin", [1, 2, 3], [])
    if after == "the Spark write":
        monkeypatch.setattr(DataFrameWriter, "parquet", taking_over_after(DataFrameWriter.parquet, s3, scratch_bucket,
                                                                          "clean-pin"))  # fmt: skip
    else:
        monkeypatch.setattr(clean, "write_text", taking_over_after(clean.write_text, s3, scratch_bucket, "clean-pin"))

    with pytest.raises(LockLostError, match="lost the lease"):
        clean.main([*job_args(scratch_bucket), "--entity", "pin"])

    # its files may sit next to the other run's: the day reads as not cleaned until a run cleans it again
    folder = partition_prefix("clean", "pin", DAY.date())
    for marker in (SUCCESS_NAME, SOURCE_NAME):
        assert s3.list_objects_v2(Bucket=scratch_bucket, Prefix=folder + marker)["KeyCount"] == 0, marker
    owner = json.loads(s3.get_object(Bucket=scratch_bucket, Key=job_lock_key("clean-pin", DAY.date()))["Body"].read())
    assert owner["owner"] == "other-run"  # the other run's lease is left alone


def test_a_clean_job_holds_its_days_leases_before_it_starts_its_session(
    spark_on_minio: SparkSession, s3: Any, scratch_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a cluster a session holds cores: a job that waited for a lease with one could starve the lease's holder."""
    for entity in ("pin", "user"):
        put_raw(s3, scratch_bucket, entity, [1, 2], [])
    leases_at_start: list[str] = []

    def session_after_leases(_app_name: str) -> SparkSession:
        listed = s3.list_objects_v2(Bucket=scratch_bucket, Prefix="_locks/").get("Contents", [])
        leases_at_start.extend(sorted(entry["Key"] for entry in listed))
        return spark_on_minio

    monkeypatch.setattr(clean, "build_session", session_after_leases)
    clean.main([*job_args(scratch_bucket), "--entity", "user", "pin"])

    assert leases_at_start == sorted(job_lock_key(f"clean-{entity}", DAY.date()) for entity in ("pin", "user"))
    assert s3.list_objects_v2(Bucket=scratch_bucket, Prefix="_locks/")["KeyCount"] == 0  # released
    for entity in ("pin", "user"):
        rows = read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", entity, DAY.date()))
        assert sorted(row["ind"] for row in rows) == [1, 2]


def test_an_analytics_job_whose_lease_is_taken_over_while_it_computes_writes_nothing_and_fails(
    spark_on_minio: SparkSession, s3: Any, scratch_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for entity in ENTITIES:
        put_raw(s3, scratch_bucket, entity, [1, 2], [])
    clean.main(job_args(scratch_bucket))
    monkeypatch.setattr(analytics, "computed", taking_over_after(analytics.computed, s3, scratch_bucket, "analytics"))

    with pytest.raises(LockLostError, match=r"_locks/analytics/dt=2026-11-24/lease"):
        analytics.main(job_args(scratch_bucket))

    assert read_parquet_rows(s3, scratch_bucket, "analytics/") == []
    assert s3.list_objects_v2(Bucket=scratch_bucket, Prefix=publication_key(DAY.date()))["KeyCount"] == 0
