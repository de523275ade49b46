"""Ingest API benchmark: single-record POST throughput and latency, batch records/s, and the ceiling.

The API runs as its own process (``python -m api``) on isolated topics; the load
comes from a separate process (a small keep-alive HTTP/1.1 client on asyncio,
lighter than httpx so the client is not what is measured) that does nothing
else, so its peak RSS is the client's. In the same run, from another process, a
bare kafka-python producer with the API's producer settings sends the same
records (the ceiling), and so does confluent-kafka for comparison. Memory is in
MiB (2**20 bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from benchmarks.memory import vm_hwm_mib
from benchmarks.results import Result
from benchmarks.stack import stack_env
from include.records import ENTITIES
from include.topics import topic_name

REPO = Path(__file__).resolve().parents[1]
BENCH = "api"
BATCH_SIZE = 500
WARM_UP = 200  # records sent before timing a bare producer (connections, producer id, metadata)
WARM_UP_DEADLINE_S = 60  # for every worker of a started API to answer 200


@dataclass(frozen=True)
class LoadOutcome:
    """What the load client saw: answers by status, latencies in seconds, wall time, its own peak RSS."""

    statuses: dict[int, int]
    latencies_s: list[float]
    elapsed_s: float
    peak_rss_mib: float


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- load client (runs in its own process) -------------------------------------------------------------------------


async def _drive(port: int, path: str, bodies: list[bytes], connections: int) -> tuple[Counter[int], list[float]]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    next_body = iter(bodies)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for body in next_body:
            started = time.perf_counter()
            writer.write(f"{head}{len(body)}\r\n\r\n".encode() + body)
            header = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[int(header[9:12])] += 1
        writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return statuses, latencies


def pin_bodies(count: int, per_request: int = 1) -> list[bytes]:
    """JSON bodies of ``count`` generated pins (seed 2026): one per body, or arrays of ``per_request``."""
    from include.emulator.generate import generate_triples

    pins = [t.pin.model_dump_json(exclude_none=True).encode() for t in generate_triples(2026, count, repeat_percent=0)]
    if per_request == 1:
        return pins
    return [b"[" + b",".join(pins[i : i + per_request]) + b"]" for i in range(0, count, per_request)]


def http_load(port: int, path: str, count: int, per_request: int, connections: int) -> LoadOutcome:
    """POST ``count`` generated pins to ``path`` over ``connections`` keep-alive connections (uvloop)."""
    import uvloop

    bodies = pin_bodies(count, per_request)
    started = time.perf_counter()
    statuses, latencies = uvloop.run(_drive(port, path, bodies, connections))
    return LoadOutcome(dict(statuses), latencies, time.perf_counter() - started, vm_hwm_mib())


# --- bare producers (each in its own process) ----------------------------------------------------------------------


def bare_kafka_python(config: dict[str, object], topic: str, records: list[tuple[bytes, bytes]]) -> tuple[float, int]:
    """Send ``records`` with kafka-python and the API's settings; (seconds until all acknowledged, acknowledged)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**config)
    for key, value in records[:WARM_UP]:
        producer.send(topic, key=key, value=value)
    producer.flush()
    started = time.perf_counter()
    futures = [producer.send(topic, key=key, value=value) for key, value in records]
    producer.flush()
    elapsed = time.perf_counter() - started
    acknowledged = sum(1 for future in futures if future.succeeded())
    producer.close()
    return elapsed, acknowledged


def bare_confluent(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> tuple[float, int]:
    """The same with confluent-kafka (librdkafka), acks=all and idempotence."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 2})
    for key, value in records[:WARM_UP]:
        producer.produce(topic, value=value, key=key)
    producer.flush()
    acknowledged = 0

    def delivered(error: object, _message: object) -> None:
        nonlocal acknowledged
        acknowledged += error is None

    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush()
    return time.perf_counter() - started, acknowledged


def _other_codecs(chosen: str | None) -> list[str | None]:
    """The compression codecs kafka-python can use here (their libraries are importable), except ``chosen``."""
    from kafka.codec import has_lz4, has_snappy, has_zstd

    available = {None: True, "gzip": True, "snappy": has_snappy(), "lz4": has_lz4(), "zstd": has_zstd()}
    return [codec for codec, usable in available.items() if usable and codec != chosen]


# --- the API under test --------------------------------------------------------------------------------------------


@contextmanager
def bench_topics(bootstrap: str) -> Iterator[str]:
    """Fresh topics ``<prefix>.pin|geo|user`` (3 partitions) deleted afterwards; yields the prefix."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    prefix = f"bench-api-{uuid.uuid4().hex[:8]}"
    names = [topic_name(prefix, entity) for entity in ENTITIES]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, 3, 1) for name in names])
    try:
        yield prefix
    finally:
        admin.delete_topics(names)
        admin.close()


@contextmanager
def running_api(bootstrap: str, prefix: str, workers: int) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``python -m api`` on a free port; yields (port, process) once it is ready for records."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PINTEREST_TOPIC_PREFIX": prefix, "API_KEY": "",
           "API_PORT": str(port), "API_WORKERS": str(workers), "API_LOG_LEVEL": "warning"}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "api"], cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (_listening(port) and httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the API did not become ready")
            time.sleep(0.2)
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tree_peak_rss_mib(process: subprocess.Popen[bytes]) -> float:
    import psutil

    pids = [process.pid, *(child.pid for child in psutil.Process(process.pid).children(recursive=True))]
    return max(vm_hwm_mib(pid) for pid in pids)


def warm_up(client: ProcessPoolExecutor, port: int) -> None:
    """POST 200 pins until all are accepted (every worker's producer connected); fails after a deadline."""
    deadline = time.monotonic() + WARM_UP_DEADLINE_S
    statuses: dict[int, int] = {}
    while (left := deadline - time.monotonic()) > 0:
        with contextlib.suppress(TimeoutError):
            statuses = client.submit(http_load, port, "/pin/", 200, 1, 8).result(timeout=left).statuses
        if statuses == {200: 200}:
            return
        time.sleep(0.5)
    raise RuntimeError(
        f"the API on port {port} did not accept 200 pins in a row within {WARM_UP_DEADLINE_S} s "
        f"(last answers by status: {statuses or 'none'}); see its log above"
    )


# --- the run -------------------------------------------------------------------------------------------------------


def run(scale: float = 1.0) -> list[Result]:
    """Single POST (32 connections), batch POST (500 records, 4 connections), bare producers, same records."""
    from api.producer import producer_config
    from api.settings import ApiSettings
    from include.emulator.generate import generate_triples
    from include.records import kafka_key, kafka_value

    bootstrap = stack_env().get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    single_n = max(300, int(30_000 * scale))
    batch_n = max(BATCH_SIZE * 2, int(200_000 * scale)) // BATCH_SIZE * BATCH_SIZE
    pins = [t.pin for t in generate_triples(seed=2026, count=batch_n, repeat_percent=0)]
    keyed = [(kafka_key("pin", pin), kafka_value(pin)) for pin in pins]
    results: list[Result] = []
    spawn = get_context("spawn")

    # the bare producers and the load client each in a process of their own: VmHWM is a lifetime peak
    with (
        bench_topics(bootstrap) as prefix,
        ProcessPoolExecutor(1, mp_context=spawn) as side,
        ProcessPoolExecutor(1, mp_context=spawn) as client,
    ):
        topic = topic_name(prefix, "pin")
        settings = ApiSettings(KAFKA_BOOTSTRAP_SERVERS=bootstrap, PINTEREST_TOPIC_PREFIX=prefix)
        config = producer_config(settings)
        elapsed, acked = side.submit(bare_kafka_python, config, topic, keyed).result()
        ceiling = acked / elapsed
        results.append(
            Result(
                BENCH,
                f"bare kafka-python producer, {settings.kafka_compression} (ceiling)",
                ceiling,
                "records/s",
                f"{acked} records, acks=all, idempotent, the API's producer settings",
            )
        )
        for codec in _other_codecs(settings.kafka_compression):
            elapsed, acked = side.submit(
                bare_kafka_python, {**config, "compression_type": codec}, topic, keyed
            ).result()
            results.append(
                Result(
                    BENCH,
                    f"bare kafka-python producer, {codec}",
                    acked / elapsed,
                    "records/s",
                    f"{acked / elapsed / ceiling:.2f}x the ceiling",
                )
            )
        elapsed, acked = side.submit(bare_confluent, bootstrap, topic, keyed).result()
        results.append(Result(BENCH, "bare confluent-kafka producer, none", acked / elapsed, "records/s",
                              f"{acked / elapsed / ceiling:.1f}x the kafka-python ceiling"))  # fmt: skip

        for workers in (1, 2):
            with running_api(bootstrap, prefix, workers) as (port, process):
                warm_up(client, port)
                single = client.submit(http_load, port, "/pin/", single_n, 1, 32).result()
                batch = client.submit(http_load, port, "/pin/batch", batch_n, BATCH_SIZE, 4).result()
                api_peak = _tree_peak_rss_mib(process)
            ok_single = single.statuses.get(200, 0)
            rate = ok_single / single.elapsed_s
            label = f"{workers} worker{'s' if workers > 1 else ''}"
            results += [
                Result(BENCH, f"single POST /pin/ ({label})", rate, "requests/s",
                       f"{ok_single}/{single_n} ok, 32 connections; goal >= 2000"),
                Result(BENCH, f"single POST p50 ({label})", 1000 * _percentile(single.latencies_s, 0.50), "ms"),
                Result(BENCH, f"single POST p99 ({label})", 1000 * _percentile(single.latencies_s, 0.99), "ms",
                       "goal < 50"),
            ]  # fmt: skip
            batch_records = batch.statuses.get(200, 0) * BATCH_SIZE
            batch_rate = batch_records / batch.elapsed_s
            results += [
                Result(BENCH, f"batch POST /pin/batch ({label})", batch_rate, "records/s",
                       f"{batch_rate / ceiling:.2f}x bare producer; goal >= 0.5x; {BATCH_SIZE}/request"),
                Result(BENCH, f"single POST vs bare producer ({label})", rate / ceiling, "ratio"),
                Result(BENCH, f"API peak RSS ({label})", api_peak, "MiB", "max over the uvicorn processes"),
            ]  # fmt: skip
        results.append(Result(BENCH, "load client peak RSS", batch.peak_rss_mib, "MiB",
                              "VmHWM of the load client's own process, over both runs"))  # fmt: skip
    return results


if __name__ == "__main__":
    sys.exit("run it with `python -m benchmarks --only api [--scale S]`")
