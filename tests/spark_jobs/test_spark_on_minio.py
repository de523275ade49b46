"""The jobs end to end on the local stack's MinIO, submitted through the operator (spark-submit, s3a).

Each test works in a bucket of its own (``scratch_bucket``), so it cannot see or disturb other tests.
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest
from airflow.exceptions import AirflowException

from include.drain.lock import PartitionLock
from include.lake import job_lock_key, manifest_key, partition_prefix, success_key
from plugins.lake_spark import ANALYTICS_JOB, CLEAN_JOB, LakeSparkSubmitOperator

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
    """Two objects (one gzipped) listed by the manifest, one object it does not list, and ``_SUCCESS``."""
    prefix = partition_prefix("raw", entity, DAY.date())
    batches = [inds, reposted]
    files = []
    for number, batch in enumerate(batches):
        body = "".join(
            json.dumps({"partition": 0, "offset": 100 * number + i, "timestamp": T0 + 100 * number + i,
                        "key": str(ind), "value": records(ind)[entity]}) + "\n"
            for i, ind in enumerate(batch)
        ).encode()  # fmt: skip
        key = f"{prefix}0-{number:06d}.jsonl" + (".gz" if number else "")
        data = gzip.compress(body) if number else body
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        files.append({"key": key, "partition": 0, "first_offset": 0, "last_offset": 0, "count": len(batch)})
    stray = json.dumps({"partition": 1, "offset": 0, "timestamp": T0, "key": "999", "value": records(999)[entity]})
    s3.put_object(Bucket=bucket, Key=f"{prefix}stray.jsonl", Body=stray.encode())
    manifest = {"status": "complete", "files": files}
    s3.put_object(Bucket=bucket, Key=manifest_key(entity, DAY.date()), Body=json.dumps(manifest).encode())
    s3.put_object(Bucket=bucket, Key=success_key(entity, DAY.date()), Body=b"")


def read_parquet_rows(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    rows = []
    for key in sorted(k for k in keys if k.endswith(".parquet")):
        rows += pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()
    return rows


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
    by_country = read_parquet_rows(s3, scratch_bucket, partition_prefix("analytics", "popular_category_by_country",
                                                                        DAY.date()))  # fmt: skip
    # Chad: inds 2,4,6,8,10 -> travel,diy,art,travel,diy; Peru: 1,3,5,7,9 -> diy,art,travel,diy,art (ties)
    assert sorted((r["country"], r["category"], r["category_count"]) for r in by_country) == [
        ("Chad", "diy", 2),
        ("Peru", "art", 2),
    ]
    joined = read_parquet_rows(s3, scratch_bucket, partition_prefix("analytics", "users_joined_by_year", DAY.date()))
    assert joined == [{"post_year": 2018, "number_users_joined": 10}]


def test_a_clean_job_waits_its_turn_while_another_run_writes_the_day(
    s3: Any, scratch_bucket: str, spark_connections: None, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    put_raw(s3, scratch_bucket, "pin", [1, 2, 3], [])
    clean_pin = LakeSparkSubmitOperator(task_id="job", application=CLEAN_JOB, bucket=scratch_bucket, entities=["pin"])
    context = {"data_interval_start": DAY, "run_id": "this-run", "ti": SimpleNamespace(try_number=1)}
    lease = PartitionLock(s3, scratch_bucket, job_lock_key("clean-pin", DAY.date()), "other-run", ttl_seconds=120)

    with lease, pytest.raises(AirflowException):  # spark-submit fails: the day is another run's
        clean_pin.execute(context)

    logged = caplog.text + "".join(capfd.readouterr())
    assert "is held by 'other-run'" in logged and "another run is writing this partition" in logged
    assert read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", "pin", DAY.date())) == []
    clean_pin.execute(context)  # the other run released it: Airflow's retry goes through
    rows = read_parquet_rows(s3, scratch_bucket, partition_prefix("clean", "pin", DAY.date()))
    assert sorted(row["ind"] for row in rows) == [1, 2, 3]


def test_the_analytics_of_a_day_wait_their_turn_too(
    s3: Any, scratch_bucket: str, spark_connections: None, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    for entity in ("pin", "geo", "user"):
        put_raw(s3, scratch_bucket, entity, [1, 2], [])
    submit(CLEAN_JOB, scratch_bucket)
    analytics = LakeSparkSubmitOperator(task_id="job", application=ANALYTICS_JOB, bucket=scratch_bucket)
    context = {"data_interval_start": DAY, "run_id": "this-run", "ti": SimpleNamespace(try_number=1)}
    lease = PartitionLock(s3, scratch_bucket, job_lock_key("analytics", DAY.date()), "other-run", ttl_seconds=120)
    joined = partition_prefix("analytics", "users_joined_by_year", DAY.date())

    with lease, pytest.raises(AirflowException):
        analytics.execute(context)

    assert "is held by 'other-run'" in caplog.text + "".join(capfd.readouterr())
    assert read_parquet_rows(s3, scratch_bucket, joined) == []
    analytics.execute(context)
    assert read_parquet_rows(s3, scratch_bucket, joined) == [{"post_year": 2018, "number_users_joined": 2}]
