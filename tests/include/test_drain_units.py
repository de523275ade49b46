"""Pure functions of the drain: intervals, retention check, names, stale keys, quarantine lines."""

from __future__ import annotations

import hashlib
import json
from base64 import b64decode
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from include.drain import (
    DrainRequest,
    DrainSettings,
    Interval,
    IntervalError,
    NoIntervalError,
    SourceTopicError,
    kafka_reader,
)
from include.drain.engine import lost_partitions, refuse_other_source, stale_keys
from include.drain.errors import KafkaReadError
from include.drain.interval import refuse_other_midnight
from include.drain.kafka_reader import PartitionPlan, make_consumer, read_range, retention_floor_ms, start_is_held
from include.drain.lines import key_json, quarantine_line
from include.drain.lock import Holder, age_seconds
from include.drain.manifest import Manifest, PartitionSummary, QuarantineSummary
from include.drain.objects import object_name
from tests.api_process import free_port

D = datetime(2024, 3, 10, tzinfo=UTC)
GRACE = timedelta(minutes=10)


def test_interval_is_one_utc_day_keyed_on_its_start():
    interval = Interval(D, D + timedelta(days=1))
    assert interval.day == date(2024, 3, 10)
    assert (interval.start_ms, interval.end_ms) == (1710028800000, 1710028800000 + 86_400_000)


def test_interval_given_in_another_timezone_is_converted_to_utc():
    paris = timezone(timedelta(hours=1))
    interval = Interval(datetime(2024, 3, 10, 1, tzinfo=paris), datetime(2024, 3, 11, 1, tzinfo=paris))
    assert interval.start == D and interval.start.tzinfo == UTC


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        (D, D + timedelta(hours=1), "not one whole UTC day"),
        (D + timedelta(hours=2), D + timedelta(days=1, hours=2), "not one whole UTC day"),
        (datetime(2024, 3, 10), datetime(2024, 3, 11), "has no timezone"),
    ],
)
def test_interval_that_is_not_a_utc_day_is_refused(start, end, match):
    with pytest.raises(IntervalError, match=match):
        Interval(start, end)


def test_run_without_interval_fails_clearly():
    with pytest.raises(NoIntervalError, match="no data interval"):
        Interval.of_run(None, None)


@pytest.mark.parametrize(
    ("now", "status", "wait_s"),
    [
        (D + timedelta(hours=12), "partial", 0.0),  # open day: drained at once
        (D + timedelta(days=1), "partial", 600.0),  # day over, grace not: wait
        (D + timedelta(days=1, minutes=4), "partial", 360.0),
        (D + timedelta(days=1, minutes=10), "complete", 0.0),
        (D + timedelta(days=30), "complete", 0.0),
    ],
)
def test_status_and_wait_follow_the_end_plus_grace(now, status, wait_s):
    interval = Interval.for_day(D.date())
    assert interval.status_at(now, GRACE) == status
    assert interval.seconds_to_wait(now, GRACE) == wait_s


@pytest.mark.parametrize(
    ("log_start", "high", "first_at_early", "held"),
    [
        (0, 0, None, True),  # never written
        (0, 10, 3, True),  # nothing deleted
        (5, 10, 7, True),  # deletion point before the day's first record
        (5, 10, None, True),  # retained records all precede the day
        (5, 10, 5, False),  # the first retained record is the day's first: earlier ones may be gone
        (10, 10, None, False),  # everything deleted
    ],
)
def test_start_is_held_unless_records_at_the_start_may_be_deleted(log_start, high, first_at_early, held):
    assert start_is_held(log_start, high, first_at_early) is held
    assert start_is_held(log_start, high, first_at_early, early_is_retained=True)  # time retention cannot reach it


WEEK_MS = 7 * 86_400_000


@pytest.mark.parametrize(
    ("configs", "floor"),
    [
        ({"retention.ms": str(WEEK_MS), "retention.bytes": "-1", "cleanup.policy": "delete"}, 10 * WEEK_MS),
        ({"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}, None),  # only admins delete
        ({"retention.ms": str(WEEK_MS), "retention.bytes": "1073741824", "cleanup.policy": "delete"}, None),
        ({"retention.ms": str(WEEK_MS), "retention.bytes": "-1", "cleanup.policy": "compact,delete"}, None),
    ],
)
def test_retention_floor_only_when_time_alone_deletes(configs, floor):
    assert retention_floor_ms(configs, now_ms=11 * WEEK_MS) == floor


def plan(partition: int, log_start: int, high: int, held: bool = True) -> PartitionPlan:
    return PartitionPlan(partition, log_start, high, log_start, high, high, held)


TOPIC_ID = "topic-id-1"


def drained(*ranges: tuple[int, int | None, int | None], topic_id: str | None = TOPIC_ID) -> Manifest:
    """A manifest whose partitions hold the offset ranges ``(partition, first, last)``."""
    summaries = [
        PartitionSummary(
            partition=p, log_start_offset=0, read_from=0, read_to=0, first_offset=first, last_offset=last,
            count=0, quarantined=0, outside_interval=0, bytes=0, sha256="",
        )
        for p, first, last in ranges
    ]  # fmt: skip
    return Manifest(
        entity="pin", dt=D.date(), topic="t", topic_id=topic_id, interval_start=D, interval_end=D + timedelta(days=1),
        lateness_grace_seconds=600, status="complete", run_id="r", drained_at=D, record_count=0, total_bytes=0,
        files=[], partitions=summaries, quarantine=QuarantineSummary(count=0, share=0, max_share=0, files=[]),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("plans", "existing", "reasons"),
    [
        ([plan(0, 0, 50), plan(1, 5, 9)], None, []),
        ([plan(0, 0, 50), plan(1, 5, 9, held=False)], None, ["[1] starts at offset 5"]),
        ([plan(0, 0, 50)], drained((0, 10, 49)), []),  # Kafka still has every drained offset
        ([plan(0, 0, 50)], drained((0, None, None), (1, 3, 4)), ["[1] no longer exists"]),
        ([plan(0, 20, 50)], drained((0, 10, 49)), ["[0] starts at offset 20, after drained offset 10"]),
        (
            [plan(0, 0, 12)],
            drained((0, 10, 49)),
            ["[0] ends at offset 12, before drained offset 49 (topic recreated or reset?)"],
        ),
        ([plan(0, 20, 50, held=False)], drained((0, 10, 49)), ["[0] starts at offset 20"]),
        ([plan(0, 0, 50)], drained((0, 10, 49), topic_id=None), []),  # a manifest from before topic ids
    ],
)
def test_lost_partitions_compare_kafka_with_the_drained_offsets(plans, existing, reasons):
    assert lost_partitions(plans, existing, TOPIC_ID) == reasons


def test_a_recreated_topic_has_lost_every_partition_whatever_its_offsets():
    reasons = lost_partitions([plan(0, 0, 500)], drained((0, 10, 49)), "topic-id-2")
    assert len(reasons) == 1 and "recreated" in reasons[0] and "topic-id-2" in reasons[0] and TOPIC_ID in reasons[0]


def test_a_day_drained_from_another_topic_name_is_refused_with_both_names():
    refuse_other_source(None, "other", "lake", "raw/pin/dt=2024-03-10/")  # nothing drained yet
    refuse_other_source(drained((0, 10, 49)), "t", "lake", "raw/pin/dt=2024-03-10/")  # the same topic
    with pytest.raises(SourceTopicError) as refused:
        refuse_other_source(drained((0, 10, 49)), "other", "lake", "raw/pin/dt=2024-03-10/")
    expected = "s3://lake/raw/pin/dt=2024-03-10/ holds 0 records drained from topic t, not other"
    assert str(refused.value).startswith(expected)


def test_object_name_carries_partition_offset_range_and_checksum_and_sorts_by_offset():
    digest = hashlib.sha256(b"lines\n").hexdigest()
    name = object_name(2, 12, 345, digest)
    assert name == f"part-p0002-o00000000000000000012-00000000000000000345-{digest[:16]}.jsonl"
    other = hashlib.sha256(b"other lines\n").hexdigest()
    assert object_name(2, 12, 345, other) != name  # other bytes for the same offsets: another object
    assert sorted([object_name(0, 100, 150, "0" * 64), object_name(0, 9, 99, "f" * 64)])[0].startswith(
        "part-p0000-o00000000000000000009-"
    )
    with pytest.raises(ValueError, match="hex digest"):
        object_name(2, 12, 345, "abc")


def test_stale_keys_spare_listed_objects_and_control_files():
    prefix = "raw/pin/dt=2024-03-10/"
    listed = [prefix + n for n in ("a.jsonl", "b.jsonl", "_manifest.json", "_SUCCESS", "_dq.json", "_drain.lock")]
    assert stale_keys(listed, {prefix + "a.jsonl"}) == [prefix + "b.jsonl"]


def test_quarantine_line_keeps_coordinates_raw_text_and_reason():
    line = quarantine_line(1, 42, 1710028800000, "ключ".encode(), b"{oops\n", "value: Invalid JSON")
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "partition": 1, "offset": 42, "timestamp": 1710028800000, "key": "ключ", "value": "{oops\n",
        "reason": "value: Invalid JSON",
    }  # fmt: skip


def test_quarantine_line_keeps_the_exact_bytes_of_a_key_or_value_that_is_not_utf8():
    key, value = b"k\xff", b'{"ind": "\xe9"}'  # \xe9: Latin-1, not UTF-8
    parsed = json.loads(quarantine_line(0, 7, 1, key, value, "key: not UTF-8"))
    assert "key" not in parsed and "value" not in parsed
    assert (b64decode(parsed["key_base64"]), b64decode(parsed["value_base64"])) == (key, value)
    assert json.loads(quarantine_line(0, 8, 1, None, None, "value: empty (tombstone)"))["key"] is None


def test_request_and_settings_refuse_bad_values():
    interval = Interval.for_day(D.date())
    with pytest.raises(ValueError, match="unknown entity 'pins'"):
        DrainRequest("pins", "t", "b", interval, "run")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="run_id"):
        DrainRequest("pin", "t", "b", interval, "")
    with pytest.raises(ValueError, match="max_quarantine_share"):
        DrainSettings(max_quarantine_share=1.5)


@pytest.mark.parametrize(
    "key", [b"8b5b1f3e-0c4e-4a8e-9d0f-3c1f2e6a7b90", b"42", b'a"b', b"a\\b", b"\xc3\xa9", b"\t", b""]
)
def test_key_json_is_the_json_string_of_the_key(key):
    assert json.loads(key_json(key)) == key.decode()


def test_key_json_of_a_missing_key_is_null_and_a_non_utf8_key_is_refused():
    assert key_json(None) == b"null"
    with pytest.raises(UnicodeDecodeError):
        key_json(b"\xff")


@pytest.mark.parametrize(
    ("logical", "refused"),
    [
        (datetime(2026, 11, 26, tzinfo=UTC), True),  # today's midnight, to drain yesterday: today's slot
        (datetime(2026, 12, 5, tzinfo=UTC), True),  # a later midnight
        (datetime(2026, 11, 20, tzinfo=UTC), True),  # a past midnight: its day could get no run of its own
        (datetime(2026, 11, 26, 9, 30, tzinfo=UTC), False),  # the UI's default, "now"
        (datetime(2026, 11, 25, tzinfo=UTC), False),  # the interval's own start, as scheduled runs have
        (None, False),
    ],
)
def test_a_run_may_not_hold_the_midnight_of_another_day(logical, refused):
    interval = Interval.for_day(date(2026, 11, 25))
    if refused:
        with pytest.raises(IntervalError, match=f"scheduled run of {logical.date()}, but the run drains 2026-11-25"):
            refuse_other_midnight(logical, interval, "pinterest_daily")
    else:
        refuse_other_midnight(logical, interval, "pinterest_daily")


def test_a_lease_is_aged_by_the_stores_headers_and_expires_only_past_their_resolution() -> None:
    written = datetime(2026, 11, 26, 7, 0, 0, tzinfo=UTC)
    assert age_seconds(written, "Thu, 26 Nov 2026 07:02:00 GMT") == 120.0
    lease = Holder(etag='"e"', owner="run-a", attempt=1, ttl_seconds=120.0, age_seconds=120.0)
    # whole-second headers: 120 s measured may be 119.01 s elapsed, so the lease is not surely expired yet
    assert lease.remaining_seconds == 1.0
    assert Holder(etag='"e"', owner="run-a", attempt=1, ttl_seconds=120.0, age_seconds=121.0).remaining_seconds == 0.0


def test_a_read_that_never_reaches_the_broker_names_the_offset_it_waited_for(monkeypatch):
    """Nothing listens at the bootstrap address: the consumer has no position yet, and the error says where the
    read stands (the range's first offset), not librdkafka's placeholder for no position (-1001)."""
    monkeypatch.setattr(kafka_reader, "TIMEOUT_S", 2.0)
    plan = PartitionPlan(
        partition=2, log_start=0, high_watermark=90, read_from=40, read_to=90, late_from=90, start_held=True
    )
    consumer = make_consumer(f"127.0.0.1:{free_port()}")
    try:
        with pytest.raises(KafkaReadError) as failed:
            list(read_range(consumer, "nowhere.pin", plan))
    finally:
        consumer.close()
    assert str(failed.value) == (
        "no progress reading nowhere.pin[2] at offset 40 (want up to 90) for 2s: is the broker reachable?"
    )


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("lateness_grace", timedelta(minutes=-1), "lateness_grace must not be negative"),
        ("max_object_bytes", 0, "max_object_bytes must be positive, got 0"),
        ("lease_wait_seconds", -1.0, "lease_wait_seconds must not be negative"),
    ],
)
def test_a_bad_drain_setting_is_refused_when_made_before_any_lease_or_read(setting: str, value: object, says: str):
    with pytest.raises(ValueError) as refused:
        DrainSettings(**{setting: value})

    assert says in str(refused.value)
