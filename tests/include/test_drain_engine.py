"""The drain engine against the real Kafka and MinIO of the local stack.

Every expectation is computed from what the test itself produced (partition, offset,
timestamp, key and value as Kafka acknowledged them), never from the engine's output.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import msgspec
import pytest
from botocore.exceptions import ClientError
from confluent_kafka import KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from pydantic import field_validator

from include import lake
from include.drain import (
    BadManifestError,
    BucketRefusedError,
    CompactedTopicError,
    DataExpiredError,
    DrainRequest,
    DrainResult,
    DrainSettings,
    IncompleteDayError,
    Interval,
    LockLostError,
    Manifest,
    MissingBucketError,
    MissingTopicError,
    OpenTransactionError,
    PartitionLockedError,
    QuarantineThresholdError,
    SourceTopicError,
    TopicError,
    drain,
    run_quality_gate,
)
from include.drain.quality import QualityReport
from include.emulator.generate import generate_triples
from include.lake import LOCK_NAME, S3_BUCKET_PATTERN
from include.record_structs import STRUCTS, PinStruct
from include.records import MODELS, PinRecord, kafka_key, kafka_value
from include.settings import PlatformSettings
from spark_jobs.manifest import gate_refusal, parse_manifest

DAY = date(2024, 3, 10)
START_MS = int(datetime(2024, 3, 10, tzinfo=UTC).timestamp() * 1000)
END_MS = START_MS + 86_400_000
GRACE = timedelta(minutes=10)
GRACE_MS = 600_000

Produced = tuple[int, int, int, str | None, bytes | None]  # partition, offset, timestamp, key, value


def produce(bootstrap: str, topic: str, messages: list[tuple[int, int, bytes | None, bytes | None]]) -> list[Produced]:
    """Produce ``(partition, timestamp_ms, key, value)`` in order; return each with the offset Kafka gave it."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    acked: dict[int, Produced] = {}
    errors: list[str] = []

    def delivered(index: int):
        def callback(err, msg) -> None:
            if err is not None:
                errors.append(str(err))
                return
            key = msg.key()
            acked[index] = (
                msg.partition(),
                msg.offset(),
                msg.timestamp()[1],
                None if key is None else key.decode("utf-8", "replace"),
                msg.value(),
            )

        return callback

    for index, (partition, timestamp, key, value) in enumerate(messages):
        producer.produce(
            topic, value=value, key=key, partition=partition, timestamp=timestamp, on_delivery=delivered(index)
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors
    return [acked[i] for i in range(len(messages))]


def pins(count: int, seed: int = 1) -> Iterator[tuple[bytes, bytes]]:
    """``count`` valid pin (key, value) pairs, unique ids not repeated."""
    for triple in generate_triples(seed, count, repeat_percent=0):
        yield kafka_key("pin", triple.pin), kafka_value(triple.pin)


def read_lines(s3, bucket: str, key: str) -> list[dict]:
    return [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]


def drained_records(s3, bucket: str, manifest: Manifest) -> list[tuple]:
    """Every record line of the objects the manifest lists, as (partition, offset, timestamp, key, value)."""
    rows = []
    for entry in manifest.files:
        for r in read_lines(s3, bucket, entry.key):
            rows.append((r["partition"], r["offset"], r["timestamp"], r["key"], r["value"]))
    return rows


def as_rows(produced: list[Produced]) -> list[tuple]:
    return sorted((p, o, t, k, json.loads(v)) for p, o, t, k, v in produced)


def load_manifest(s3, bucket: str, day: date = DAY, entity: str = "pin") -> Manifest:
    return Manifest.model_validate_json(s3.get_object(Bucket=bucket, Key=lake.manifest_key(entity, day))["Body"].read())


def listing(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def exists(s3, bucket: str, key: str) -> bool:
    return s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) > 0


def request(prefix: str, bucket: str, run_id: str = "run-1", day: date = DAY, **settings) -> DrainRequest:
    return DrainRequest(
        "pin", f"{prefix}.pin", bucket, Interval.for_day(day), run_id, DrainSettings(lateness_grace=GRACE, **settings)
    )


@pytest.fixture
def bootstrap(stack_env: dict[str, str]) -> str:
    return stack_env["KAFKA_BOOTSTRAP_SERVERS"]


def test_exact_interval_across_partitions_with_boundaries_and_late_records(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(40)
    plan: list[tuple[int, int, bool]] = [  # partition, timestamp, belongs to the day
        (0, START_MS - 1, False),
        (0, START_MS, True),
        (0, START_MS + 3_600_000, True),
        (0, END_MS - 1, True),
        (0, END_MS, False),
        (0, END_MS - 5_000, True),  # late, within the grace: placed by its timestamp
        (0, END_MS + GRACE_MS + 60_000, False),
        (0, END_MS - 2_000, True),  # after a record later than the grace: still found, counted as late
        (1, START_MS - 86_400_000, False),
        (1, START_MS + 1, True),
        (1, START_MS + 43_200_000, True),
        (1, END_MS + 1, False),
        (2, END_MS - 1, True),  # a partition whose only record of the day is the last millisecond
    ]
    messages = [(p, ts, *next(values)) for p, ts, _ in plan]
    produced = produce(bootstrap, f"{kafka_topics}.pin", messages)
    expected = as_rows([rec for rec, (_, _, inside) in zip(produced, plan, strict=True) if inside])

    result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket))

    manifest = load_manifest(s3, scratch_bucket)
    assert result.outcome == "drained" and result.record_count == len(expected)
    assert sorted(drained_records(s3, scratch_bucket, manifest)) == expected
    assert manifest.status == "complete" and manifest.dt == DAY and manifest.entity == "pin"
    assert manifest.interval_start == datetime(2024, 3, 10, tzinfo=UTC)
    assert manifest.interval_end == datetime(2024, 3, 11, tzinfo=UTC)
    for summary in manifest.partitions:
        offsets = [o for p, o, *_ in expected if p == summary.partition]
        assert (summary.count, summary.first_offset, summary.last_offset) == (len(offsets), min(offsets), max(offsets))
    assert [s.late for s in manifest.partitions] == [1, 0, 0]
    prefix = lake.partition_prefix("raw", "pin", DAY)
    stored = listing(s3, scratch_bucket, prefix)
    assert set(stored) == {e.key for e in manifest.files} | {prefix + "_manifest.json", prefix + "_SUCCESS"}
    for entry in manifest.files:
        body = stored[entry.key]
        assert entry.key.startswith(prefix + f"part-p{entry.partition:04d}-o{entry.first_offset:020d}-")
        assert (hashlib.sha256(body).hexdigest(), len(body), body.count(b"\n")) == (
            entry.sha256,
            entry.bytes,
            entry.count,
        )
    for summary in manifest.partitions:  # the checksum of a partition: its objects' checksums, in offset order
        objects = sorted((e.first_offset, stored[e.key]) for e in manifest.files if e.partition == summary.partition)
        joined = "\n".join(hashlib.sha256(body).hexdigest() for _, body in objects)
        assert summary.sha256 == hashlib.sha256(joined.encode()).hexdigest()


def test_empty_day_gives_a_complete_empty_partition(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(2)
    produce(bootstrap, f"{kafka_topics}.pin", [(0, START_MS - 5, *next(values)), (1, END_MS + 5, *next(values))])

    drain(s3, bootstrap, request(kafka_topics, scratch_bucket))

    manifest = load_manifest(s3, scratch_bucket)
    assert (manifest.status, manifest.record_count, manifest.files) == ("complete", 0, [])
    assert [p.count for p in manifest.partitions] == [0, 0, 0]
    assert exists(s3, scratch_bucket, lake.success_key("pin", DAY))


def test_poison_messages_go_to_quarantine_and_too_many_fail_the_run(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(6)
    good = [(0, START_MS + i, *next(values)) for i in range(6)]
    poison = [
        (1, START_MS + 10, b"k1", b"not json at all"),
        (1, START_MS + 11, b"k2", b'{"index": "seven"}'),
        (1, START_MS + 12, b"k3", None),
        (1, START_MS + 13, b"k4", b"[1, 2, 3]"),
    ]
    produced = produce(bootstrap, f"{kafka_topics}.pin", good + poison)

    result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket, max_quarantine_share=0.5))

    manifest = load_manifest(s3, scratch_bucket)
    assert (result.record_count, result.quarantined) == (6, 4)
    assert manifest.quarantine.count == 4 and manifest.quarantine.share == pytest.approx(0.4)
    quarantined = [line for f in manifest.quarantine.files for line in read_lines(s3, scratch_bucket, f.key)]
    assert all(f.key.startswith(lake.partition_prefix("quarantine", "pin", DAY)) for f in manifest.quarantine.files)
    assert sorted(q["offset"] for q in quarantined) == sorted(o for _, o, *_ in produced[6:])
    by_key = {q["key"]: q for q in quarantined}
    assert "json" in by_key["k1"]["reason"].lower() and by_key["k1"]["value"] == "not json at all"
    assert "index" in by_key["k2"]["reason"] and by_key["k3"]["value"] is None
    assert all(q["reason"] for q in quarantined)

    committed = listing(s3, scratch_bucket, lake.partition_prefix("raw", "pin", DAY))
    with pytest.raises(QuarantineThresholdError, match=r"4 of 10 messages .* not valid pin records"):
        drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="run-2", max_quarantine_share=0.1))
    # the failed rerun leaves the committed day in service: manifest, _SUCCESS and objects as they were
    assert listing(s3, scratch_bucket, lake.partition_prefix("raw", "pin", DAY)) == committed
    assert lake.partition_prefix("raw", "pin", DAY) + "_SUCCESS" in committed


def test_a_day_drained_from_another_topic_name_is_not_replaced(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(8)
    produce(bootstrap, f"{kafka_topics}.pin", [(0, START_MS + i, *next(values)) for i in range(5)])
    produce(bootstrap, f"{kafka_topics}.geo", [(0, START_MS + i, *next(values)) for i in range(3)])
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket))
    raw = lake.partition_prefix("raw", "pin", DAY)
    before = listing(s3, scratch_bucket, raw)
    other = replace(request(kafka_topics, scratch_bucket, run_id="other-topic"), topic=f"{kafka_topics}.geo")

    with pytest.raises(SourceTopicError) as refused:
        drain(s3, bootstrap, other)

    assert f"holds 5 records drained from topic {kafka_topics}.pin, not {kafka_topics}.geo" in str(refused.value)
    assert "delete that raw partition first" in str(refused.value)
    assert listing(s3, scratch_bucket, raw) == before


def test_rerun_is_byte_identical_and_removes_stale_objects(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(300)
    produce(bootstrap, f"{kafka_topics}.pin", [(i % 3, START_MS + i * 1000, *next(values)) for i in range(300)])
    raw, quarantine = lake.partition_prefix("raw", "pin", DAY), lake.partition_prefix("quarantine", "pin", DAY)
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="first", max_object_bytes=20_000))
    first = listing(s3, scratch_bucket, raw)
    stale = [raw + "part-p0000-o00000000000000000000-00000000000000000001.jsonl", quarantine + "part-p0001-x.jsonl"]
    for key in stale:
        s3.put_object(Bucket=scratch_bucket, Key=key, Body=b"left over by an earlier run\n")

    drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="second", max_object_bytes=20_000))

    second = listing(s3, scratch_bucket, raw)
    assert set(second) == set(first)
    records = [k for k in first if k.endswith(".jsonl")]
    assert len(records) > 3 and all(first[k] == second[k] for k in records)
    one = json.loads(first[raw + "_manifest.json"])
    two = json.loads(second[raw + "_manifest.json"])
    assert (one.pop("run_id"), two.pop("run_id")) == ("first", "second")
    one.pop("drained_at"), two.pop("drained_at")
    assert one == two
    assert not any(exists(s3, scratch_bucket, key) for key in stale)


def stricter_pin(refused: str) -> type[PinRecord]:
    """The pin model of a later release whose validation also refuses the pin with unique_id ``refused``."""

    class StricterPin(PinRecord):
        @field_validator("unique_id")
        @classmethod
        def _refuse(cls, value):
            if str(value) == refused:
                raise ValueError("refused by a stricter rule")
            return value

    return StricterPin


def stricter_pin_struct(refused: str) -> type[PinStruct]:
    """The same release's msgspec mirror of that model (it must not accept what the model refuses)."""

    unique_id = Annotated[str, msgspec.Meta(pattern=f"^(?!{re.escape(refused)}$)")]
    return msgspec.defstruct("StricterPinStruct", [("unique_id", unique_id)], bases=(PinStruct,))


def test_a_redrain_under_stricter_rules_never_changes_an_object_the_committed_manifest_lists(
    s3, scratch_bucket, kafka_topics, bootstrap, monkeypatch
):
    messages = [(0 if i < 100 else 1, START_MS + i * 1000, *value) for i, value in enumerate(pins(120))]
    produced = produce(bootstrap, f"{kafka_topics}.pin", messages)
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="first"))
    run_quality_gate(s3, scratch_bucket, DAY, "gate-first", entities=("pin",))
    raw, committed = lake.partition_prefix("raw", "pin", DAY), load_manifest(s3, scratch_bucket)
    gated = listing(s3, scratch_bucket, raw)
    victim = produced[50]  # in the middle of partition 0's only object
    assert [(f.partition, f.first_offset, f.last_offset) for f in committed.files] == [(0, 0, 99), (1, 0, 19)]
    monkeypatch.setitem(MODELS, "pin", stricter_pin(json.loads(victim[4])["unique_id"]))
    monkeypatch.setitem(STRUCTS, "pin", stricter_pin_struct(json.loads(victim[4])["unique_id"]))

    with pytest.raises(QuarantineThresholdError, match="1 of 120 messages"):
        drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="stricter", max_quarantine_share=0.001))

    # the day keeps its committed manifest, _SUCCESS, passing report and the very bytes that manifest lists
    assert {k: v for k, v in listing(s3, scratch_bucket, raw).items() if k in gated} == gated
    for entry in committed.files:
        assert hashlib.sha256(gated[entry.key]).hexdigest() == entry.sha256

    result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="accepted", max_quarantine_share=0.05))

    redrained = load_manifest(s3, scratch_bucket)
    assert (result.outcome, result.record_count, result.quarantined) == ("drained", 119, 1)
    assert sorted(drained_records(s3, scratch_bucket, redrained)) == as_rows(produced[:50] + produced[51:])
    (old_zero, old_one), (new_zero, new_one) = committed.files, redrained.files
    assert (new_zero.first_offset, new_zero.last_offset) == (0, 99) and new_zero.key != old_zero.key  # other bytes
    assert new_one == old_one  # the same bytes, the same name
    stored = listing(s3, scratch_bucket, raw)
    assert {k for k in stored if k.endswith(".jsonl")} == {new_zero.key, new_one.key}  # the replaced one removed
    # the earlier report stays, and names the manifest it checked: the clean job does not take it for this one
    text = stored[raw + lake.MANIFEST_NAME].decode()
    refusal = gate_refusal(stored[raw + lake.DQ_NAME].decode(), parse_manifest(text, raw))
    assert refusal is not None and "checked another manifest (drain run 'first'" in refusal


def test_open_day_is_partial_then_complete_after_the_grace(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(20)
    morning = produce(
        bootstrap, f"{kafka_topics}.pin", [(i % 3, START_MS + i * 60_000, *next(values)) for i in range(10)]
    )
    noon = datetime(2024, 3, 10, 12, tzinfo=UTC)
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="noon"), now=lambda: noon)
    partial = load_manifest(s3, scratch_bucket)
    assert partial.status == "partial" and partial.record_count == 10

    evening = produce(bootstrap, f"{kafka_topics}.pin", [(i % 3, END_MS - 1000 - i, *next(values)) for i in range(10)])
    within_grace = datetime(2024, 3, 11, 0, 5, tzinfo=UTC)
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="early"), now=lambda: within_grace)
    assert load_manifest(s3, scratch_bucket).status == "partial"
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="scheduled"))

    complete = load_manifest(s3, scratch_bucket)
    assert complete.status == "complete"
    assert sorted(drained_records(s3, scratch_bucket, complete)) == as_rows(morning + evening)
    raw = lake.partition_prefix("raw", "pin", DAY)
    assert {k for k in listing(s3, scratch_bucket, raw) if k.endswith(".jsonl")} == {f.key for f in complete.files}


DRAIN_SCRIPT = """
import os, sys, boto3
from datetime import date, timedelta
from include.drain import DrainRequest, DrainSettings, Interval, drain
topic, bucket, run_id = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name=os.environ["AWS_DEFAULT_REGION"])
settings = DrainSettings(lateness_grace=timedelta(minutes=10), max_object_bytes=8_000, lock_ttl_seconds=6)
drain(s3, os.environ["KAFKA_BOOTSTRAP_SERVERS"],
      DrainRequest("pin", topic, bucket, Interval.for_day(date(2024, 3, 10)), run_id, settings))
"""


def test_killed_drain_leaves_no_success_and_the_retry_repairs_it(s3, scratch_bucket, kafka_topics, bootstrap, tmp_path):
    values = pins(3000)
    produced = produce(
        bootstrap, f"{kafka_topics}.pin", [(i % 3, START_MS + i * 10_000, *next(values)) for i in range(3000)]
    )
    raw = lake.partition_prefix("raw", "pin", DAY)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", DRAIN_SCRIPT, f"{kafka_topics}.pin", scratch_bucket, "run-7"],
        cwd=os.getcwd(),
        env={**os.environ, "TMPDIR": str(spool_dir)},
    )
    try:
        while len([k for k in listing_keys(s3, scratch_bucket, raw) if k.endswith(".jsonl")]) < 5:
            assert child.poll() is None, "the drain ended before it could be killed"
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    written = listing_keys(s3, scratch_bucket, raw)
    assert raw + LOCK_NAME in written
    assert list(spool_dir.iterdir()) == []  # the killed drain's spool files had no names to leave behind
    assert not {raw + "_SUCCESS", raw + "_manifest.json"} & set(written)

    with pytest.raises(PartitionLockedError, match="another run is writing"):
        drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="someone-else", max_object_bytes=8_000))
    retry = request(kafka_topics, scratch_bucket, run_id="run-7", max_object_bytes=8_000, lock_ttl_seconds=6)
    drain(s3, bootstrap, replace(retry, attempt=2))  # waits out the killed try's lease, then repairs

    manifest = load_manifest(s3, scratch_bucket)
    assert sorted(drained_records(s3, scratch_bucket, manifest)) == as_rows(produced)
    after_retry = listing(s3, scratch_bucket, raw)
    assert set(after_retry) == {f.key for f in manifest.files} | {raw + "_manifest.json", raw + "_SUCCESS"}
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="clean", max_object_bytes=8_000))
    clean = listing(s3, scratch_bucket, raw)
    assert {k: v for k, v in clean.items() if k.endswith(".jsonl")} == {
        k: v for k, v in after_retry.items() if k.endswith(".jsonl")
    }


def listing_keys(s3, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def delete_records_before(bootstrap: str, topic: str, partition: int, offset: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition(topic, partition, offset)])
    for future in futures.values():
        future.result(30)


def test_expired_start_keeps_the_existing_partition_or_fails_clearly(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(30)
    produced = produce(
        bootstrap, f"{kafka_topics}.pin", [(i % 3, START_MS + i * 60_000, *next(values)) for i in range(30)]
    )
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket))
    raw = lake.partition_prefix("raw", "pin", DAY)
    before = listing(s3, scratch_bucket, raw)
    middle = sorted(o for p, o, *_ in produced if p == 0)[5]
    delete_records_before(bootstrap, f"{kafka_topics}.pin", 0, middle)
    s3.delete_object(Bucket=scratch_bucket, Key=raw + "_SUCCESS")  # as an older drain that failed halfway left it

    result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="after-retention"))

    assert result.outcome == "kept_existing" and "no longer holds" in result.message and "[0]" in result.message
    assert listing(s3, scratch_bucket, raw) == before  # _SUCCESS is back
    s3.create_bucket(Bucket=scratch_bucket + "-empty")
    try:
        with pytest.raises(DataExpiredError, match=r"expired from Kafka .* cannot be drained"):
            drain(s3, bootstrap, request(kafka_topics, scratch_bucket + "-empty"))
        assert listing_keys(s3, scratch_bucket + "-empty", "") == []
    finally:
        s3.delete_bucket(Bucket=scratch_bucket + "-empty")


def test_a_kept_partition_whose_object_changed_size_fails_clearly(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(30)
    produced = produce(
        bootstrap, f"{kafka_topics}.pin", [(i % 3, START_MS + i * 60_000, *next(values)) for i in range(30)]
    )
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket))
    raw, entry = lake.partition_prefix("raw", "pin", DAY), load_manifest(s3, scratch_bucket).files[1]
    shorter = b"".join(s3.get_object(Bucket=scratch_bucket, Key=entry.key)["Body"].read().splitlines(True)[:-1])
    s3.put_object(Bucket=scratch_bucket, Key=entry.key, Body=shorter)  # changed behind its manifest's back
    delete_records_before(bootstrap, f"{kafka_topics}.pin", 0, sorted(o for p, o, *_ in produced if p == 0)[5])
    s3.delete_object(Bucket=scratch_bucket, Key=raw + "_SUCCESS")

    with pytest.raises(DataExpiredError) as refused:
        drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="after-retention"))

    assert f"{entry.key} holds {len(shorter)} bytes, the manifest says {entry.bytes}" in str(refused.value)
    assert "Kafka no longer holds its records: it cannot be repaired" in str(refused.value)
    assert not exists(s3, scratch_bucket, raw + "_SUCCESS")  # not vouched for


def test_a_kept_partition_whose_quarantine_object_is_gone_is_kept_and_says_so(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    """No reader uses the quarantine, and Kafka cannot give its messages back: a lost quarantine object must not stop
    a day whose records are whole (it failed the day for good, and told the operator it cannot be repaired)."""
    values = pins(30)
    good = [(i % 3, START_MS + i * 60_000, *next(values)) for i in range(30)]
    produced = produce(bootstrap, f"{kafka_topics}.pin", [*good, (1, START_MS + 5, b"k", b"not json")])
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket, max_quarantine_share=0.5))
    raw, manifest = lake.partition_prefix("raw", "pin", DAY), load_manifest(s3, scratch_bucket)
    [lost] = manifest.quarantine.files
    s3.delete_object(Bucket=scratch_bucket, Key=lost.key)  # as a lifecycle rule on quarantine/ would
    delete_records_before(bootstrap, f"{kafka_topics}.pin", 0, sorted(o for p, o, *_ in produced if p == 0)[5])
    s3.delete_object(Bucket=scratch_bucket, Key=raw + "_SUCCESS")

    result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="after-retention"))

    assert (result.outcome, result.status, result.record_count) == ("kept_existing", "complete", 30)
    assert f"1 of its 1 quarantine objects are not as its manifest lists them (first: {lost.key} is missing)" in (
        result.message
    )
    assert exists(s3, scratch_bucket, raw + "_SUCCESS")
    assert load_manifest(s3, scratch_bucket) == manifest


def recreate_topic(bootstrap: str, topic: str) -> None:
    """Delete ``topic`` and create it again under the same name (one partition, no retention limit)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([topic]).values():
        future.result(30)
    deadline = time.monotonic() + 60
    while True:  # the broker finishes the deletion asynchronously
        try:
            for future in admin.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": "-1"})]).values():
                future.result(30)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.parametrize("new_records", [10, 60], ids=["fewer-than-drained", "more-than-drained"])
def test_redrain_from_a_recreated_topic_keeps_the_partition(s3, scratch_bucket, kafka_topics, bootstrap, new_records):
    topic, values = f"{kafka_topics}.pin", pins(30 + new_records)
    produce(bootstrap, topic, [(0, START_MS + i * 60_000, *next(values)) for i in range(30)])
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket))
    raw = lake.partition_prefix("raw", "pin", DAY)
    before = listing(s3, scratch_bucket, raw)
    # the same name, a new topic: its offsets start again at 0 and hold records of later days only
    recreate_topic(bootstrap, topic)
    now_ms = int(time.time() * 1000)
    produce(bootstrap, topic, [(0, now_ms + i, *next(values)) for i in range(new_records)])

    result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket))

    assert result.outcome == "kept_existing" and result.record_count == 30
    assert "the topic was recreated" in result.message
    assert listing(s3, scratch_bucket, raw) == before


def test_first_drain_after_retention_cut_at_a_late_record_fails_as_expired(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(20)
    day_records = [(0, START_MS + i * 60_000, *next(values)) for i in range(10)]
    late_from_before = [(0, START_MS - 1_000, *next(values))]  # the previous day's, one second late
    produced = produce(bootstrap, f"{kafka_topics}.pin", day_records + late_from_before)
    delete_records_before(bootstrap, f"{kafka_topics}.pin", 0, produced[-1][1])  # retention removed the day

    with pytest.raises(DataExpiredError, match=r"\[0\] starts at offset 10"):
        drain(s3, bootstrap, request(kafka_topics, scratch_bucket))
    assert listing_keys(s3, scratch_bucket, "") == []


def emptied_by_deletion(bootstrap: str, prefix: str) -> str:
    """The pin topic, with 5 records of three days ago produced to partition 0 and deleted: its log start = high."""
    topic, values = f"{prefix}.pin", pins(5)
    three_days_ago = int((datetime.now(UTC) - timedelta(days=3)).timestamp() * 1000)
    produced = produce(bootstrap, topic, [(0, three_days_ago + i, *next(values)) for i in range(5)])
    delete_records_before(bootstrap, topic, 0, produced[-1][1] + 1)
    return topic


def retain_for_a_week(bootstrap: str, topic: str) -> None:
    """Give the topic a time retention of a week (and no size limit): yesterday is within it."""
    week = ConfigEntry("retention.ms", str(7 * 86_400_000), incremental_operation=AlterConfigOpType.SET)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.incremental_alter_configs(
        [ConfigResource("topic", topic, incremental_configs=[week])]
    ).values():
        future.result(30)


def test_a_partition_emptied_by_time_retention_does_not_expire_a_recent_day(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    topic = emptied_by_deletion(bootstrap, kafka_topics)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()

    with pytest.raises(DataExpiredError):  # no time limit: only an administrator deleted, anything may be gone
        drain(s3, bootstrap, request(kafka_topics, scratch_bucket, day=yesterday))
    retain_for_a_week(bootstrap, topic)
    result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket, day=yesterday))

    assert (result.outcome, result.record_count) == ("drained", 0)  # a week's retention cannot reach yesterday


def test_an_unreadable_topic_configuration_is_retried_not_taken_for_expiry(
    s3, scratch_bucket, kafka_topics, bootstrap, monkeypatch: pytest.MonkeyPatch
):
    topic = emptied_by_deletion(bootstrap, kafka_topics)
    retain_for_a_week(bootstrap, topic)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()

    def refused(_admin: AdminClient, name: str) -> dict[str, str]:  # a broker without the DescribeConfigs ACL
        raise TopicError(f"cannot read the configuration of topic {name!r}: TOPIC_AUTHORIZATION_FAILED")

    with monkeypatch.context() as patched:
        patched.setattr("include.drain.engine.topic_configs", refused)
        with pytest.raises(TopicError) as raised:  # retried by Airflow; DataExpiredError would fail the day for good
            drain(s3, bootstrap, request(kafka_topics, scratch_bucket, day=yesterday))
    assert "[0] starts at offset 5" in str(raised.value)
    assert "TOPIC_AUTHORIZATION_FAILED" in str(raised.value)
    assert listing_keys(s3, scratch_bucket, "") == []  # nothing written
    result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket, day=yesterday))  # readable again

    assert (result.outcome, result.record_count) == ("drained", 0)


def test_two_concurrent_runs_of_one_day_leave_exactly_one_clean_partition(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(2000)
    produced = produce(
        bootstrap, f"{kafka_topics}.pin", [(i % 3, START_MS + i * 30_000, *next(values)) for i in range(2000)]
    )
    outcomes: dict[str, str] = {}
    together = threading.Barrier(2)

    def run(run_id: str) -> None:
        together.wait()
        try:
            drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id=run_id, max_object_bytes=20_000))
            outcomes[run_id] = "drained"
        except PartitionLockedError:
            outcomes[run_id] = "refused"

    threads = [threading.Thread(target=run, args=(f"run-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes.values()) == ["drained", "refused"]
    manifest = load_manifest(s3, scratch_bucket)
    assert manifest.run_id == next(r for r, o in outcomes.items() if o == "drained")
    assert sorted(drained_records(s3, scratch_bucket, manifest)) == as_rows(produced)
    raw = lake.partition_prefix("raw", "pin", DAY)
    assert set(listing_keys(s3, scratch_bucket, raw)) == {f.key for f in manifest.files} | {
        raw + "_manifest.json",
        raw + "_SUCCESS",
    }


class StallAtManifest:
    """An S3 client that holds the run at its manifest write (before it, or just after it) until ``go`` is set, as a
    run paused past its lease would."""

    def __init__(self, s3, manifest_key: str, after: bool = False):
        self._s3, self._key, self._after = s3, manifest_key, after
        self.stalled, self.go = threading.Event(), threading.Event()

    def put_object(self, **kwargs):
        if kwargs["Key"] == self._key and not self._after:
            self._stall()
        reply = self._s3.put_object(**kwargs)
        if kwargs["Key"] == self._key and self._after:
            self._stall()
        return reply

    def _stall(self) -> None:
        self.stalled.set()
        assert self.go.wait(60)

    def __getattr__(self, name: str):
        return getattr(self._s3, name)


def start_stalled_run(
    stalling: StallAtManifest, bootstrap: str, kafka_topics: str, scratch_bucket: str
) -> tuple[threading.Thread, list[BaseException]]:
    """Start a drain (run id ``stalled``) through ``stalling`` in a thread; what it raises lands in the list."""
    failures: list[BaseException] = []

    def stalled_run() -> None:
        try:
            drain(stalling, bootstrap, request(kafka_topics, scratch_bucket, run_id="stalled", max_object_bytes=8_000))
        except BaseException as exc:  # handed to the test thread
            failures.append(exc)

    thread = threading.Thread(target=stalled_run)
    thread.start()
    return thread, failures


def test_a_run_given_a_lease_wait_drains_the_day_once_the_run_holding_it_is_done(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    values = pins(150)
    first = produce(bootstrap, f"{kafka_topics}.pin", [(i % 3, START_MS + i * 1000, *next(values)) for i in range(100)])
    stalling = StallAtManifest(s3, lake.manifest_key("pin", DAY))
    thread, failures = start_stalled_run(stalling, bootstrap, kafka_topics, scratch_bucket)
    assert stalling.stalled.wait(60), "the first run never reached its commit"
    later = produce(bootstrap, f"{kafka_topics}.pin",
                    [(i % 3, START_MS + 200_000 + i, *next(values)) for i in range(50)])  # fmt: skip
    second: list[DrainResult | BaseException] = []

    def waiting_run() -> None:
        try:
            second.append(drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="second",
                                                       max_object_bytes=8_000, lease_wait_seconds=60)))  # fmt: skip
        except BaseException as exc:  # handed to the test thread
            second.append(exc)

    waiting = threading.Thread(target=waiting_run)
    waiting.start()
    waiting.join(8)  # past the lock's first polls: the stalled run still holds the day
    still_waiting = waiting.is_alive()
    stalling.go.set()
    thread.join(60)
    waiting.join(90)

    assert still_waiting and failures == []
    assert [(r.outcome, r.record_count) for r in second if isinstance(r, DrainResult)] == [("drained", 150)], second
    manifest = load_manifest(s3, scratch_bucket)
    assert manifest.run_id == "second"
    assert sorted(drained_records(s3, scratch_bucket, manifest)) == as_rows(first + later)


def take_over_with_more_records(s3, bootstrap: str, kafka_topics: str, scratch_bucket: str, values) -> list:
    """While a first run stalls: 50 more pins are produced, its lease goes, and run ``took-over`` drains the day."""
    later = produce(bootstrap, f"{kafka_topics}.pin",
                    [(i % 3, START_MS + 200_000 + i, *next(values)) for i in range(50)])  # fmt: skip
    s3.delete_object(Bucket=scratch_bucket, Key=lake.partition_prefix("raw", "pin", DAY) + LOCK_NAME)
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="took-over", max_object_bytes=8_000))
    return later


def test_a_run_stalled_past_its_lease_cannot_overwrite_the_commit_of_the_run_that_took_it(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    values = pins(150)
    topic = f"{kafka_topics}.pin"
    first = produce(bootstrap, topic, [(i % 3, START_MS + i * 1000, *next(values)) for i in range(100)])
    stalling = StallAtManifest(s3, lake.manifest_key("pin", DAY))
    thread, failures = start_stalled_run(stalling, bootstrap, kafka_topics, scratch_bucket)
    assert stalling.stalled.wait(60), "the first run never reached its commit"
    # its lease is lost meanwhile (a clock ahead, a long pause) and another run drains the day, now with more records
    later = take_over_with_more_records(s3, bootstrap, kafka_topics, scratch_bucket, values)
    raw = lake.partition_prefix("raw", "pin", DAY)
    stalling.go.set()
    thread.join(60)

    assert len(failures) == 1 and "was replaced or deleted while this run" in str(failures[0]), failures
    manifest = load_manifest(s3, scratch_bucket)
    assert manifest.run_id == "took-over"
    assert sorted(drained_records(s3, scratch_bucket, manifest)) == as_rows(first + later)
    assert exists(s3, scratch_bucket, raw + "_SUCCESS")


def test_a_run_that_lost_its_lease_after_its_commit_fails_and_leaves_the_next_runs_report(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    values = pins(150)
    topic = f"{kafka_topics}.pin"
    first = produce(bootstrap, topic, [(i % 3, START_MS + i * 1000, *next(values)) for i in range(100)])
    stalling = StallAtManifest(s3, lake.manifest_key("pin", DAY), after=True)
    thread, failures = start_stalled_run(stalling, bootstrap, kafka_topics, scratch_bucket)
    assert stalling.stalled.wait(60), "the first run never committed"
    # its lease is lost meanwhile, and another run drains the day, now with more records, and its gate passes it
    later = take_over_with_more_records(s3, bootstrap, kafka_topics, scratch_bucket, values)
    raw = lake.partition_prefix("raw", "pin", DAY)
    assert run_quality_gate(s3, scratch_bucket, DAY, "took-over", entities=("pin",))["pin"].passed
    stalling.go.set()
    thread.join(60)

    assert len(failures) == 1 and isinstance(failures[0], LockLostError), failures
    assert "after this run committed" in str(failures[0]) and "left to the next drain" in str(failures[0])
    manifest = load_manifest(s3, scratch_bucket)
    assert manifest.run_id == "took-over"
    assert sorted(drained_records(s3, scratch_bucket, manifest)) == as_rows(first + later)
    stored = listing(s3, scratch_bucket, raw)
    assert raw + "_SUCCESS" in stored
    report = stored[raw + lake.DQ_NAME].decode()  # the report of the run that took over, as its gate wrote it
    assert QualityReport.model_validate_json(report).manifest_run_id == "took-over"
    assert gate_refusal(report, parse_manifest(stored[raw + lake.MANIFEST_NAME].decode(), raw)) is None


def test_a_missing_topic_or_bucket_is_named_and_is_not_worth_a_retry(s3, scratch_bucket, kafka_topics, bootstrap):
    missing_bucket = f"{scratch_bucket}-none"
    with pytest.raises(MissingBucketError, match=f"bucket '{missing_bucket}' does not exist"):
        drain(s3, bootstrap, request(kafka_topics, missing_bucket))

    with pytest.raises(MissingTopicError, match=rf"topic '{kafka_topics}-none.pin' does not exist"):
        drain(s3, bootstrap, request(f"{kafka_topics}-none", scratch_bucket))
    assert listing_keys(s3, scratch_bucket, "") == []  # nothing written, the lease released


def test_a_bucket_the_endpoint_refuses_is_named_with_what_to_check(
    s3, scratch_bucket, kafka_topics, bootstrap, stack_env
):
    """A 403 (wrong keys) or 400 (a name MinIO refuses) came out as botocore's bare "Forbidden" or "Bad Request",
    naming neither the bucket nor the cause, and was retried."""
    keys = {**stack_env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    wrong_keys = PlatformSettings.model_validate(keys).s3_client()
    with pytest.raises(BucketRefusedError, match=rf"answered 403 to a HEAD of bucket '{scratch_bucket}': check the"):
        drain(wrong_keys, bootstrap, request(kafka_topics, scratch_bucket))

    odd_name = f"{scratch_bucket}.-x"  # S3's naming rules allow it; MinIO does not
    assert re.search(S3_BUCKET_PATTERN, odd_name)
    with pytest.raises(BucketRefusedError, match=rf"answered 400 to a HEAD of bucket '{re.escape(odd_name)}'"):
        drain(s3, bootstrap, request(kafka_topics, odd_name))


class RepliesLost:
    """The real S3 client, except that each conditional write is stored and then answered 412, as when its reply
    was lost and the client's retry of it was refused."""

    def __init__(self, s3) -> None:
        self._s3, self.lost = s3, 0

    def __getattr__(self, name: str):
        return getattr(self._s3, name)

    def put_object(self, **kwargs):
        reply = self._s3.put_object(**kwargs)
        if "IfMatch" not in kwargs and "IfNoneMatch" not in kwargs:
            return reply
        self.lost += 1
        error = {"Error": {"Code": "PreconditionFailed", "Message": "retried write"}}
        raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 412}}, "PutObject")


def test_a_commit_and_a_renewal_that_landed_count_although_their_replies_were_lost(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    values = pins(6)
    produced = produce(bootstrap, f"{kafka_topics}.pin", [(i % 3, START_MS + i, *next(values)) for i in range(6)])
    lossy = RepliesLost(s3)

    result = drain(lossy, bootstrap, request(kafka_topics, scratch_bucket, run_id="lossy"))

    assert lossy.lost >= 4  # taking the lease, two renewals, the manifest
    assert result.outcome == "drained" and load_manifest(s3, scratch_bucket).run_id == "lossy"
    assert not exists(s3, scratch_bucket, lake.lock_key("pin", DAY))  # released: it was this run's
    assert sorted(drained_records(s3, scratch_bucket, load_manifest(s3, scratch_bucket))) == as_rows(produced)


def test_a_partial_day_kafka_can_no_longer_complete_fails_until_accepted_as_final(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    values = pins(20)
    morning = produce(bootstrap, f"{kafka_topics}.pin", [(0, START_MS + i * 60_000, *next(values)) for i in range(10)])
    noon = datetime(2024, 3, 10, 12, tzinfo=UTC)
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="noon"), now=lambda: noon)
    produce(bootstrap, f"{kafka_topics}.pin", [(0, END_MS - 1000 - i, *next(values)) for i in range(10)])
    delete_records_before(bootstrap, f"{kafka_topics}.pin", 0, morning[3][1])  # retention took the morning's start
    raw = lake.partition_prefix("raw", "pin", DAY)
    drained_at_noon = listing(s3, scratch_bucket, raw)

    with pytest.raises(IncompleteDayError) as refused:
        drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="scheduled"))

    assert f"{raw} is partial (10 records, drained while 2024-03-10 was open)" in str(refused.value)
    assert "rerun this day with accept_partial=true" in str(refused.value)
    assert listing(s3, scratch_bucket, raw) == drained_at_noon

    result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="ops", accept_partial=True))

    accepted = load_manifest(s3, scratch_bucket)
    assert result.outcome == "kept_existing" and "accepted as final" in result.message
    assert accepted.status == "partial" and accepted.record_count == 10 and accepted.run_id == "noon"
    assert accepted.accepted_partial is not None and accepted.accepted_partial.run_id == "ops"
    assert "[0] starts at offset" in accepted.accepted_partial.reason
    assert sorted(drained_records(s3, scratch_bucket, accepted)) == as_rows(morning)
    again = drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="next-rerun"))  # already decided
    assert again.outcome == "kept_existing" and load_manifest(s3, scratch_bucket) == accepted


def test_a_compacted_topic_is_refused_naming_its_policy(s3, scratch_bucket, kafka_topics, bootstrap):
    # compaction deletes records without moving the log start: a rerun would replace the lake's copy with less
    topic = f"{kafka_topics}.pin"
    values = pins(2)
    produce(bootstrap, topic, [(0, START_MS + i, *next(values)) for i in range(2)])
    compact = ConfigEntry("cleanup.policy", "compact,delete", incremental_operation=AlterConfigOpType.SET)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.incremental_alter_configs(
        [ConfigResource("topic", topic, incremental_configs=[compact])]
    ).values():
        future.result(30)

    with pytest.raises(CompactedTopicError, match=rf"topic '{topic}' has cleanup.policy=compact,delete"):
        drain(s3, bootstrap, request(kafka_topics, scratch_bucket))
    assert not exists(s3, scratch_bucket, lake.partition_prefix("raw", "pin", DAY))


def test_the_first_day_of_the_epoch_can_be_drained(s3, scratch_bucket, kafka_topics, bootstrap):
    # its start minus the grace is before the epoch, a timestamp Kafka refuses to look up
    epoch = date(1970, 1, 1)
    values = pins(3)
    produced = produce(bootstrap, f"{kafka_topics}.pin", [(0, 1_000 + i, *next(values)) for i in range(3)])

    result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket, day=epoch))

    assert (result.status, result.record_count) == ("complete", 3)
    assert sorted(drained_records(s3, scratch_bucket, load_manifest(s3, scratch_bucket, epoch))) == as_rows(produced)


def test_an_unreadable_existing_manifest_is_named_and_left_alone(s3, scratch_bucket, kafka_topics, bootstrap):
    values = pins(2)
    produce(bootstrap, f"{kafka_topics}.pin", [(0, START_MS + i, *next(values)) for i in range(2)])
    key = lake.manifest_key("pin", DAY)
    s3.put_object(Bucket=scratch_bucket, Key=key, Body=b'{"format_version": 1}')

    with pytest.raises(
        BadManifestError, match=rf"s3://{scratch_bucket}/{key} is not a manifest the drain wrote"
    ) as bad:
        drain(s3, bootstrap, request(kafka_topics, scratch_bucket))
    assert s3.get_object(Bucket=scratch_bucket, Key=key)["Body"].read() == b'{"format_version": 1}'
    assert "once you know Kafka still holds all of the day" in str(bad.value)  # deleting may lose the only copy
    assert "newer version" not in str(bad.value)


def test_a_manifest_with_a_field_this_version_does_not_know_asks_about_a_newer_version(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    values = pins(2)
    produce(bootstrap, f"{kafka_topics}.pin", [(0, START_MS + i, *next(values)) for i in range(2)])
    drain(s3, bootstrap, request(kafka_topics, scratch_bucket))
    key = lake.manifest_key("pin", DAY)
    written = json.loads(s3.get_object(Bucket=scratch_bucket, Key=key)["Body"].read())
    s3.put_object(Bucket=scratch_bucket, Key=key, Body=json.dumps({**written, "compression": "zstd"}).encode())

    with pytest.raises(BadManifestError, match=r"was it written by a newer version\?"):
        drain(s3, bootstrap, request(kafka_topics, scratch_bucket, run_id="older-worker"))


def open_transaction(bootstrap: str, topic: str, timestamp_ms: int) -> Producer:
    """A transactional producer with one record of ``topic``'s partition 0 in a transaction left open."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"test-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    key, value = next(pins(1, seed=99))
    producer.produce(topic, value=value, key=key, partition=0, timestamp=timestamp_ms)
    assert producer.flush(30) == 0
    return producer


def test_a_drain_waits_for_an_open_transaction_that_holds_back_records_of_the_day(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    # a read_committed consumer cannot read past a transaction's first record until it ends: planning at once
    # would have cut the day before the plain record written after it
    topic = f"{kafka_topics}.pin"
    values = pins(4)
    before = produce(bootstrap, topic, [(0, START_MS + i, *next(values)) for i in range(3)])
    transaction = open_transaction(bootstrap, topic, START_MS + 100)
    after = produce(bootstrap, topic, [(0, END_MS - 1000, *next(values))])
    aborter = threading.Timer(2.0, transaction.abort_transaction)
    aborter.start()
    try:
        result = drain(s3, bootstrap, request(kafka_topics, scratch_bucket))
    finally:
        aborter.join()

    assert (result.status, result.record_count) == ("complete", 4)
    assert sorted(drained_records(s3, scratch_bucket, load_manifest(s3, scratch_bucket))) == as_rows(before + after)


def test_a_transaction_left_open_fails_the_drain_naming_where_and_writes_nothing(
    s3, scratch_bucket, kafka_topics, bootstrap
):
    topic = f"{kafka_topics}.pin"
    values = pins(3)
    produce(bootstrap, topic, [(0, START_MS + i, *next(values)) for i in range(3)])
    transaction = open_transaction(bootstrap, topic, START_MS + 100)
    try:
        with pytest.raises(OpenTransactionError, match=rf"{re.escape(topic)}\[0\] from offset 3 \(written up to 4\)"):
            drain(s3, bootstrap, request(kafka_topics, scratch_bucket, transaction_wait_seconds=1.0))
    finally:
        transaction.abort_transaction()
    assert not exists(s3, scratch_bucket, lake.manifest_key("pin", DAY))
