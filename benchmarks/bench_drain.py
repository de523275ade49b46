"""Drain throughput against a bare consumer (the ceiling), and the drain's peak memory at 1x and 4x a day; the
quality gate's rate against a bare read of the objects it checks.

Produces a day of ``1,000,000 * scale`` pin records into one throwaway topic, and the same day
followed by a day four times bigger into a second one, with a bare producer. Then, each in a
fresh subprocess so that peak RSS belongs to one measurement: the bare consumers read the 1x
day's offsets of the first topic without writing, and the drain copies the 1x day (first topic),
the 4x day (second topic) and, as a backfill would, the 1x day again from the second topic,
where it must read the 4x day after it too (it reads to the high watermark). Rates count Kafka
payload bytes (key + value), the same for every reader.

The bare confluent-kafka consumer and the 1x drain run twice, alternating, and keep their
best time, which evens out load from other processes on a shared machine; their peak RSS is the
higher of the two runs. The bare consumer also reads the 4x day, the ceiling of the 4x drain.
After every drain, before anything is deleted, its output is checked (:func:`verify_drain`): a
new manifest written by that run, with the day's records, and every object it lists stored
with the manifest's byte count. Memory is in MiB (2**20 bytes), payload in MB (10**6 bytes).

The quality gate (pin alone: the drain benchmark produces no geo or user records) checks the drained 1x and 4x days,
each in a fresh subprocess too; its ceiling is a bare read of the same objects (GET, SHA-256 and line count, which the
gate needs as well), alternating with the 1x gate twice. Every gate must pass and count the day's records
(:func:`check_gate_output`).

Run on its own: ``python -m benchmarks --only drain [--scale S]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from benchmarks.memory import vm_hwm_mib
from benchmarks.results import Result
from benchmarks.stack import stack_env
from include.days import midnight_ms
from include.settings import PlatformSettings

BENCH = "drain"
DAY_1X = date(2024, 6, 1)
DAY_4X = date(2024, 6, 3)  # not adjacent: no record of it falls in the 1x day's grace
PARTITIONS = 3
FULL_DAY = 1_000_000


def _s3(env: dict[str, str]) -> Any:
    return PlatformSettings.model_validate(env).s3_client()


def _day_start_ms(day: date) -> int:
    return midnight_ms(day)


def _produce_day(bootstrap: str, topic: str, day: date, count: int) -> None:
    """``count`` pins spread over ``day``, round-robin over the partitions, from a pool of real-looking values, each
    with an ``index`` and ``unique_id`` (the key) of its own, as a day of distinct pins has."""
    from confluent_kafka import Producer

    from include.emulator.generate import generate_triples
    from include.records import kafka_key, kafka_value

    pool = []
    for triple in generate_triples(5, 5000, repeat_percent=0):
        value, key = kafka_value(triple.pin), kafka_key("pin", triple.pin)
        head, found, rest = value.partition(b'"index":%d,"unique_id":"%s"' % (triple.pin.index, key))
        if not found:
            raise RuntimeError(f"no index and unique_id to replace in {value[:200]!r}")
        pool.append((head, rest))
    first = {DAY_1X: 0, DAY_4X: FULL_DAY * 10}[day]  # the 1x and 4x days share no key
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 100,
                         "batch.num.messages": 10000, "queue.buffering.max.kbytes": 1048576})  # fmt: skip
    start, step = _day_start_ms(day), 86_400_000 / count
    for i in range(count):
        head, rest = pool[i % len(pool)]
        key = b"%08x-0000-4000-8000-%012x" % (first + i, first + i)
        value = b'%s"index":%d,"unique_id":"%s"%s' % (head, first + i, key, rest)
        while True:
            try:
                producer.produce(topic, value, key, partition=i % PARTITIONS, timestamp=start + int(i * step))
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise RuntimeError(f"the producer could not deliver every record to {topic}")


# --- measured in a child process -------------------------------------------------------------


def _child(mode: str, topic: str, day_iso: str, bucket: str) -> dict[str, Any]:
    from include.drain import DrainRequest, Interval, drain, run_quality_gate
    from include.drain.kafka_reader import make_consumer, plan_partitions, read_range

    env = os.environ
    interval = Interval.for_day(date.fromisoformat(day_iso))
    started = time.perf_counter()
    records = payload = 0
    drained: dict[str, str] = {}
    if mode == "drain":
        run_id = f"bench-{uuid.uuid4().hex[:8]}"
        result = drain(_s3(dict(env)), env["KAFKA_BOOTSTRAP_SERVERS"],
                       DrainRequest("pin", topic, bucket, interval, run_id))  # fmt: skip
        records, drained = result.record_count, {"run_id": run_id, "outcome": result.outcome}
    elif mode == "bare-confluent":
        consumer = make_consumer(env["KAFKA_BOOTSTRAP_SERVERS"])
        for plan in plan_partitions(consumer, topic, interval.start_ms, interval.end_ms, 600_000):
            for batch in read_range(consumer, topic, plan):
                records += len(batch)
                payload += sum(len(m.value()) + len(m.key()) for m in batch)
        consumer.close()
    elif mode == "bare-kafka-python":
        records, payload = _bare_kafka_python(env["KAFKA_BOOTSTRAP_SERVERS"], topic, interval)
    elif mode == "gate":
        report = run_quality_gate(_s3(dict(env)), bucket, interval.day, "bench-gate", entities=["pin"])["pin"]
        records, drained = report.metrics.record_count, {"passed": report.passed}
    elif mode == "read-objects":
        records, payload = _read_objects(_s3(dict(env)), bucket, interval.day)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - started
    return {"records": records, "payload": payload, "seconds": seconds, "peak_mib": vm_hwm_mib(), **drained}


def _bare_kafka_python(bootstrap: str, topic: str, interval: Any) -> tuple[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             max_partition_fetch_bytes=8 << 20, fetch_max_bytes=50 << 20)  # fmt: skip
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    starts = consumer.offsets_for_times(dict.fromkeys(tps, interval.start_ms))
    stops = consumer.offsets_for_times(dict.fromkeys(tps, interval.end_ms + 600_000))
    ends = consumer.end_offsets(tps)
    records = payload = 0
    for tp in tps:
        first = starts[tp].offset if starts[tp] else ends[tp]
        stop = stops[tp].offset if stops[tp] else ends[tp]
        if first >= stop:
            continue
        consumer.assign([tp])
        consumer.seek(tp, first)
        done = False
        while not done:
            for message in consumer.poll(timeout_ms=1000, max_records=5000).get(tp, []):
                if message.offset >= stop:
                    done = True
                    break
                records += 1
                payload += len(message.value) + len(message.key)
                done = message.offset >= stop - 1
    consumer.close()
    return records, payload


def _read_objects(s3: Any, bucket: str, day: date) -> tuple[int, int]:
    """The gate's ceiling: every object of the day's pin manifest read, hashed and its lines counted; (lines, bytes)."""
    from include.drain.quality import CHUNK_BYTES
    from include.lake import manifest_key

    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key("pin", day))["Body"].read())
    lines = size = 0
    for entry in manifest["files"]:
        digest = hashlib.sha256()
        for chunk in s3.get_object(Bucket=bucket, Key=entry["key"])["Body"].iter_chunks(CHUNK_BYTES):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            size += len(chunk)
        if digest.hexdigest() != entry["sha256"]:
            raise RuntimeError(f"{entry['key']} is not the object its manifest lists")
    return lines, size


def _measure(mode: str, topic: str, day: date, bucket: str, env: dict[str, str]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter (credentials through the environment, not the command line)."""
    from devstack import paths

    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_drain", "--child", mode, topic, day.isoformat(),
                           bucket], env={**env, "PYTHONPATH": str(paths.REPO)}, cwd=paths.REPO,
                          capture_output=True, text=True, timeout=3600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"bench child {mode} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- checking the drain's output ---------------------------------------------------------------


class DrainOutputError(RuntimeError):
    """A drain did not leave the day it was given in S3: its time would not be a drain's."""


def check_drain_output(
    run: Mapping[str, Any], manifest: Mapping[str, Any], expected: int, sizes: Mapping[str, int | None]
) -> None:
    """Raise DrainOutputError unless ``run`` drained (not kept an existing partition) and wrote ``manifest``, which
    counts ``expected`` records in total and over its files, and every listed object is stored with its byte count.

    ``sizes`` is each listed key's stored ContentLength (None when the object is missing).
    """
    files = manifest["files"]
    problems = [
        f"{what} is {found!r}, not {wanted!r}"
        for what, found, wanted in (
            ("the outcome", run["outcome"], "drained"),
            ("the manifest's run id", manifest["run_id"], run["run_id"]),
            ("the manifest's status", manifest["status"], "complete"),
            ("the manifest's record count", manifest["record_count"], expected),
            ("the sum of its files' counts", sum(f["count"] for f in files), expected),
        )
        if found != wanted
    ]
    problems += [f"{f['key']} is {sizes.get(f['key'])} bytes, the manifest says {f['bytes']}" for f in files
                 if sizes.get(f["key"]) != f["bytes"]]  # fmt: skip
    if problems:
        raise DrainOutputError(f"drain {run['run_id']}: " + "; ".join(problems))


def verify_drain(s3: Any, bucket: str, day: date, run: Mapping[str, Any], expected: int) -> None:
    """Read the day's manifest and HEAD every object it lists, then :func:`check_drain_output`."""
    from include.drain.s3_errors import stored_size
    from include.lake import manifest_key

    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key("pin", day))["Body"].read())
    sizes = {f["key"]: stored_size(s3, bucket, f["key"]) for f in manifest["files"]}
    check_drain_output(run, manifest, expected, sizes)


def check_gate_output(run: Mapping[str, Any], expected: int) -> None:
    """Raise DrainOutputError unless the gate passed the day and counted its ``expected`` records."""
    if not run["passed"] or run["records"] != expected:
        raise DrainOutputError(f"the gate {'passed' if run['passed'] else 'failed'} {run['records']:,} records, "
                               f"expected {expected:,} passed")  # fmt: skip


def _cleanup(env: dict[str, str], topics: list[str], buckets: list[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]})
    for future in admin.delete_topics(topics).values():
        future.result(60)
    s3 = _s3(env)
    for bucket in buckets:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        s3.delete_bucket(Bucket=bucket)


def run(scale: float = 1.0) -> list[Result]:
    """Rates of the drain and of bare consumers on the same offsets; the drain's peak RSS at 1x and 4x."""
    from confluent_kafka.admin import AdminClient, NewTopic

    env = stack_env()
    count = max(3000, int(FULL_DAY * scale))
    tag = uuid.uuid4().hex[:8]
    topic, both = f"bench-drain-{tag}.pin", f"bench-drain-{tag}-both.pin"
    bucket, both_bucket = f"bench-drain-{tag}", f"bench-drain-{tag}-both"
    admin = AdminClient({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]})
    new = [NewTopic(name, PARTITIONS, 1, config={"retention.ms": "-1"}) for name in (topic, both)]
    for future in admin.create_topics(new).values():
        future.result(60)
    s3 = _s3(env)
    for name in (bucket, both_bucket):
        s3.create_bucket(Bucket=name)

    def drained(name: str, day: date, into: str, expected: int) -> dict[str, Any]:
        run = _measure("drain", name, day, into, env)
        verify_drain(s3, into, day, run, expected)
        return run

    def gated(day: date, into: str, expected: int) -> dict[str, Any]:
        run = _measure("gate", "", day, into, env)
        check_gate_output(run, expected)
        return run

    try:
        started = time.perf_counter()
        for name, day, size in ((topic, DAY_1X, count), (both, DAY_1X, count), (both, DAY_4X, 4 * count)):
            _produce_day(env["KAFKA_BOOTSTRAP_SERVERS"], name, day, size)
        produced_s = time.perf_counter() - started
        # the ceiling and the 1x drain alternate twice and keep their best: the machine is shared
        bares, ones = [], []
        for _ in range(2):
            bares.append(_measure("bare-confluent", topic, DAY_1X, bucket, env))
            ones.append(drained(topic, DAY_1X, bucket, count))
        bare_kp = _measure("bare-kafka-python", topic, DAY_1X, bucket, env)
        bare4 = _measure("bare-confluent", both, DAY_4X, both_bucket, env)
        # the 1x day again, from the other topic: into a bucket of its own, as a lake refuses another source
        four = drained(both, DAY_4X, both_bucket, 4 * count)
        past = drained(both, DAY_1X, both_bucket, count)
        reads, gates = [], []
        for _ in range(2):
            reads.append(_measure("read-objects", "", DAY_1X, bucket, env))
            gates.append(gated(DAY_1X, bucket, count))
        gate4 = gated(DAY_4X, both_bucket, 4 * count)
    finally:
        _cleanup(env, [topic, both], [bucket, both_bucket])
    bare, one, read, gate = (min(runs, key=lambda m: m["seconds"]) for runs in (bares, ones, reads, gates))
    if (
        not {m["records"] for m in (*bares, bare_kp, *ones, past, *reads)} == {count}
        or not bare4["records"] == four["records"] == 4 * count
    ):
        raise RuntimeError(
            f"readers disagree on the day's records: {bares}, {bare_kp}, {ones}, {past}, {reads}, {bare4}, {four}"
        )
    mb = bare["payload"] / 1e6
    one_peak, bare_peak = max(m["peak_mib"] for m in ones), max(m["peak_mib"] for m in bares)

    def rate(m: dict[str, float]) -> float:
        return m["records"] / m["seconds"]

    ceiling = f"vs bare confluent consumer {rate(bare):,.0f}/s"
    read_mb_s, gate_peak = read["payload"] / 1e6 / read["seconds"], max(m["peak_mib"] for m in gates)
    return [
        Result(BENCH, "records in the 1x day", count, "records", f"{mb:,.0f} MB payload; 4x day {4 * count:,}"),
        Result(BENCH, "bare producer (setup)", 6 * count / produced_s, "records/s", "confluent-kafka, acks=1"),
        Result(BENCH, "bare consumer confluent-kafka", rate(bare), "records/s", f"{mb / bare['seconds']:,.1f} MB/s"),
        Result(
            BENCH,
            "bare consumer kafka-python",
            rate(bare_kp),
            "records/s",
            f"{rate(bare_kp) / rate(bare):.0%} of confluent-kafka",
        ),
        Result(BENCH, "drain 1x", rate(one), "records/s", ceiling),
        Result(BENCH, "drain 1x throughput", mb / one["seconds"], "MB/s", f"{rate(one) / rate(bare):.0%} of ceiling"),
        Result(BENCH, "bare consumer confluent-kafka, 4x day", rate(bare4), "records/s", "the 4x drain's ceiling"),
        Result(BENCH, "drain 4x", rate(four), "records/s", f"{rate(four) / rate(bare4):.0%} of the 4x ceiling"),
        Result(
            BENCH,
            "drain 1x with 4x after it",
            past["seconds"],
            "s",
            f"reads {5 * count:,} to keep {count:,}; {past['seconds'] / one['seconds']:.1f}x the 1x drain",
        ),
        Result(BENCH, "drain peak RSS 1x", one_peak, "MiB", f"VmHWM, max of 2 runs; bare consumer {bare_peak:.0f} MiB"),
        Result(BENCH, "drain peak RSS 4x", four["peak_mib"], "MiB", f"{four['peak_mib'] / one_peak:.2f}x of 1x"),
        Result(BENCH, "quality gate 1x (pin)", rate(gate), "records/s",
               f"{rate(gate) / rate(read):.0%} of a bare read of its objects ({read_mb_s:,.0f} MB/s)"),
        Result(BENCH, "quality gate peak RSS 1x", gate_peak, "MiB",
               f"max of 2 runs; 4x day {gate4['peak_mib']:.0f} MiB, {gate4['peak_mib'] / gate_peak:.2f}x"),
    ]  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] != ["--child"] or len(sys.argv) != 6:
        sys.exit("this module runs one drain for `python -m benchmarks --only drain [--scale S]`")
    print(json.dumps(_child(*sys.argv[2:6])))
