"""Where `make demo` starts its backfill in a lake left by earlier runs, and a lake without its bucket (real MinIO,
a scratch bucket)."""

from __future__ import annotations

import json
from argparse import Namespace
from datetime import UTC, date, datetime, timedelta

import pytest
from confluent_kafka import Consumer, TopicPartition

from demo.__main__ import first_day_refusal, first_day_to_backfill, run
from include import lake
from include.emulator.post import ApiUnreachableError
from include.records import ENTITIES
from include.topics import topic_name
from spark_jobs.manifest import parse_manifest, source_json
from tests.api_process import free_port

SEEDED_FROM = date(2026, 11, 23)


def put_day(s3, bucket: str, day: date, status: str = "complete", entities=ENTITIES, clean: str = "current", **extra):
    """A drained day; ``clean`` is "current" (cleaned from it), "stale" (from other data) or "none"."""
    for entity in entities:
        raw = json.dumps({"status": status, "files": [{"key": f"{lake.partition_prefix('raw', entity, day)}a"}],
                          **extra})  # fmt: skip
        s3.put_object(Bucket=bucket, Key=lake.manifest_key(entity, day), Body=raw.encode())
        if clean == "none":
            continue
        cleaned = raw if clean == "current" else raw.replace('/a"', '/b"')  # another file: other data
        manifest = parse_manifest(cleaned, lake.partition_prefix("raw", entity, day))
        source = source_json(manifest, datetime.now(UTC), "r", 1)
        key = lake.partition_prefix("clean", entity, day) + lake.SOURCE_NAME
        s3.put_object(Bucket=bucket, Key=key, Body=source.encode())


def test_an_empty_lake_starts_at_the_seeded_days(s3, scratch_bucket):
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == SEEDED_FROM
    s3.put_object(Bucket=scratch_bucket, Key="raw/pin/dt=2026-13-45/notes.txt", Body=b"")  # no day: not the lake's
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == SEEDED_FROM


def test_a_lake_ready_up_to_the_seeded_days_starts_there(s3, scratch_bucket):
    for back in (1, 3):
        put_day(s3, scratch_bucket, SEEDED_FROM - timedelta(days=back))
    put_day(s3, scratch_bucket, SEEDED_FROM - timedelta(days=2), "partial", accepted_partial={"run_id": "ops"})
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == SEEDED_FROM


def test_a_gap_or_a_partial_day_since_the_first_drained_day_is_redone(s3, scratch_bucket):
    put_day(s3, scratch_bucket, date(2026, 11, 12))
    put_day(s3, scratch_bucket, date(2026, 11, 13))
    put_day(s3, scratch_bucket, date(2026, 11, 14), entities=("pin", "user"))  # geo never drained
    put_day(s3, scratch_bucket, date(2026, 11, 16), "partial")
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == date(2026, 11, 14)

    put_day(s3, scratch_bucket, date(2026, 11, 14), entities=("geo",))
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == date(2026, 11, 15)  # never drained at all


def test_days_before_the_lakes_first_day_are_not_redone(s3, scratch_bucket):
    # a lake left by a demo of weeks ago, then a stack started with LAKE_FIRST_DAY (the README's way out): the DAG
    # refuses runs of the gap's days, so a backfill from the gap failed the demo at once, every time
    put_day(s3, scratch_bucket, date(2026, 11, 2))
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == date(2026, 11, 3)
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM, date(2026, 11, 20)) == date(2026, 11, 20)
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM, SEEDED_FROM) == SEEDED_FROM
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM, date(2026, 10, 1)) == date(2026, 11, 3)


def test_a_lake_first_day_after_the_seeded_days_stops_the_demo_naming_the_setting():
    assert first_day_refusal(None, SEEDED_FROM) is None
    assert first_day_refusal(SEEDED_FROM, SEEDED_FROM) is None
    refusal = first_day_refusal(SEEDED_FROM + timedelta(days=1), SEEDED_FROM)
    assert refusal is not None
    assert refusal.startswith("the stack's LAKE_FIRST_DAY 2026-11-24 is after the first seeded day 2026-11-23")
    assert "`make down && LAKE_FIRST_DAY=2026-11-23 make up`" in refusal


def test_a_day_not_cleaned_from_the_raw_data_it_holds_is_redone(s3, scratch_bucket):
    put_day(s3, scratch_bucket, date(2026, 11, 20))
    put_day(s3, scratch_bucket, date(2026, 11, 21), entities=("user",), clean="stale")
    put_day(s3, scratch_bucket, date(2026, 11, 21), entities=("pin", "geo"))
    put_day(s3, scratch_bucket, date(2026, 11, 22), clean="none")
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == date(2026, 11, 21)

    put_day(s3, scratch_bucket, date(2026, 11, 21))
    assert first_day_to_backfill(s3, scratch_bucket, SEEDED_FROM) == date(2026, 11, 22)


def test_a_lake_without_its_bucket_or_refusing_the_keys_stops_the_demo_before_anything_is_written(stack_env, s3):
    missing = "demo-test-no-such-bucket"
    assert missing not in {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    args = Namespace(history_days=1, per_day=1, live=1, seed=1)
    # an Airflow that does not answer: were the lake not checked first, the run would stop there, before seeding
    stack_env = {**stack_env, "AIRFLOW_API_URL": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(
        SystemExit, match=rf"there is no bucket '{missing}' in the lake's S3 \(LAKE_BUCKET\): `make up`"
    ):
        run(args, {**stack_env, "LAKE_BUCKET": missing})
    wrong_keys = {**stack_env, "AWS_SECRET_ACCESS_KEY": "not-the-stack-secret"}
    bucket = stack_env["LAKE_BUCKET"]
    with pytest.raises(SystemExit, match=rf"the lake's S3 refuses bucket '{bucket}' to the stack's keys \(HTTP 403\)"):
        run(args, wrong_keys)


def test_an_api_that_does_not_answer_stops_the_demo_before_the_history_goes_into_kafka(stack_env, kafka_topics):
    # the history was seeded first, then posting failed: each rerun added another day's worth of records
    args = Namespace(history_days=1, per_day=5, live=1, seed=1)
    env = {**stack_env, "API_URL": f"http://127.0.0.1:{free_port()}", "PINTEREST_TOPIC_PREFIX": kafka_topics}
    with pytest.raises(ApiUnreachableError, match=r"the API does not answer at http://127\.0\.0\.1:\d+"):
        run(args, env)
    consumer = Consumer({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"], "group.id": "demo-test"})
    try:
        for entity in ENTITIES:
            topic = topic_name(kafka_topics, entity)
            partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
            ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in partitions]
            assert sum(ends) == 0, topic
    finally:
        consumer.close()
