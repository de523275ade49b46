"""Drain throughput against a bare consumer (the ceiling), and the drain's peak memory at 1x and 4x a day.

Produces a day of ``1,000,000 * scale`` pin records into one throwaway topic, and the same day
followed by a day four times bigger into a second one, with a bare producer. Then, each in a
fresh subprocess so that peak RSS belongs to one measurement: the bare consumers read the 1x
day's offsets of the first topic without writing, and the drain copies the 1x day (first topic),
the 4x day (second topic) and, as a backfill would, the 1x day again from the second topic,
where it must read the 4x day after it too (it reads to the high watermark). Rates count Kafka
payload bytes (key + value), the same for every reader.

The bare confluent-kafka consumer and the 1x drain run twice, alternating, and keep their
best time, which evens out load from other processes on a shared machine.

Run on its own: ``python -m benchmarks.bench_drain [scale]``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

from benchmarks.results import Result
from benchmarks.stack import stack_env
from include.settings import PlatformSettings

BENCH = "drain"
DAY_1X = date(2024, 6, 1)
DAY_4X = date(2024, 6, 3)  # not adjacent: no record of it falls in the 1x day's grace
PARTITIONS = 3
FULL_DAY = 1_000_000


def _s3(env: dict[str, str]) -> Any:
    return PlatformSettings.model_validate(env).s3_client()


def _day_start_ms(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)


def _produce_day(bootstrap: str, topic: str, day: date, count: int) -> None:
    """``count`` pins spread over ``day``, round-robin over the partitions, from a pool of real-looking values."""
    from confluent_kafka import Producer

    from include.emulator.generate import generate_triples
    from include.records import kafka_key, kafka_value

    pool = [(kafka_key("pin", t.pin), kafka_value(t.pin)) for t in generate_triples(5, 5000, repeat_percent=0)]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 100,
                         "batch.num.messages": 10000, "queue.buffering.max.kbytes": 1048576})  # fmt: skip
    start, step = _day_start_ms(day), 86_400_000 / count
    for i in range(count):
        key, value = pool[i % len(pool)]
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


def _child(mode: str, topic: str, day_iso: str, bucket: str) -> dict[str, float]:
    from include.drain import DrainRequest, Interval, drain
    from include.drain.kafka_reader import make_consumer, plan_partitions, read_range

    env = os.environ
    interval = Interval.for_day(date.fromisoformat(day_iso))
    started = time.perf_counter()
    records = payload = 0
    if mode == "drain":
        result = drain(_s3(dict(env)), env["KAFKA_BOOTSTRAP_SERVERS"],
                       DrainRequest("pin", topic, bucket, interval, f"bench-{uuid.uuid4().hex[:8]}"))  # fmt: skip
        records = result.record_count
    elif mode == "bare-confluent":
        consumer = make_consumer(env["KAFKA_BOOTSTRAP_SERVERS"])
        for plan in plan_partitions(consumer, topic, interval.start_ms, interval.end_ms, 600_000):
            for batch in read_range(consumer, topic, plan):
                records += len(batch)
                payload += sum(len(m.value()) + len(m.key()) for m in batch)
        consumer.close()
    elif mode == "bare-kafka-python":
        records, payload = _bare_kafka_python(env["KAFKA_BOOTSTRAP_SERVERS"], topic, interval)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - started
    return {"records": records, "payload": payload, "seconds": seconds, "peak_mb": _peak_rss_kb() / 1024}


def _peak_rss_kb() -> int:
    """Peak RSS of this process image: VmHWM, as ru_maxrss on Linux carries the forking parent's peak over exec."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


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


def _measure(mode: str, topic: str, day: date, bucket: str, env: dict[str, str]) -> dict[str, float]:
    """Run one measurement in a fresh interpreter (credentials through the environment, not the command line)."""
    from devstack import paths

    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_drain", "--child", mode, topic, day.isoformat(),
                           bucket], env={**env, "PYTHONPATH": str(paths.REPO)}, cwd=paths.REPO,
                          capture_output=True, text=True, timeout=3600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"bench child {mode} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    for name in (bucket, both_bucket):
        _s3(env).create_bucket(Bucket=name)
    try:
        started = time.perf_counter()
        for name, day, size in ((topic, DAY_1X, count), (both, DAY_1X, count), (both, DAY_4X, 4 * count)):
            _produce_day(env["KAFKA_BOOTSTRAP_SERVERS"], name, day, size)
        produced_s = time.perf_counter() - started
        # the ceiling and the 1x drain alternate twice and keep their best: the machine is shared
        bare, one = {"seconds": float("inf")}, {"seconds": float("inf")}
        for _ in range(2):
            bare = min(bare, _measure("bare-confluent", topic, DAY_1X, bucket, env), key=lambda m: m["seconds"])
            one = min(one, _measure("drain", topic, DAY_1X, bucket, env), key=lambda m: m["seconds"])
        bare_kp = _measure("bare-kafka-python", topic, DAY_1X, bucket, env)
        # the 1x day again, from the other topic: into a bucket of its own, as a lake refuses another source
        four = _measure("drain", both, DAY_4X, both_bucket, env)
        past = _measure("drain", both, DAY_1X, both_bucket, env)
    finally:
        _cleanup(env, [topic, both], [bucket, both_bucket])
    if (
        not bare["records"] == bare_kp["records"] == one["records"] == past["records"] == count
        or four["records"] != 4 * count
    ):
        raise RuntimeError(f"readers disagree on the day's records: {bare}, {bare_kp}, {one}, {past}, {four}")
    mb = bare["payload"] / 1e6

    def rate(m: dict[str, float]) -> float:
        return m["records"] / m["seconds"]

    ceiling = f"vs bare confluent consumer {rate(bare):,.0f}/s"
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
        Result(BENCH, "drain 4x", rate(four), "records/s", f"{rate(four) / rate(bare):.0%} of ceiling"),
        Result(
            BENCH,
            "drain 1x with 4x after it",
            past["seconds"],
            "s",
            f"reads {5 * count:,} to keep {count:,}; {past['seconds'] / one['seconds']:.1f}x the 1x drain",
        ),
        Result(BENCH, "drain peak RSS 1x", one["peak_mb"], "MB", f"bare consumer {bare['peak_mb']:.0f} MB"),
        Result(BENCH, "drain peak RSS 4x", four["peak_mb"], "MB", f"{four['peak_mb'] / one['peak_mb']:.2f}x of 1x"),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child(*sys.argv[2:6])))
    else:
        for row in run(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0):
            print(f"{row.name:32} {row.value:>14,.2f} {row.unit:10} {row.note}")
