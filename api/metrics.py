"""Prometheus metrics of the API, aggregated over its workers when PROMETHEUS_MULTIPROC_DIR is set (api.__main__
sets it up whenever API_WORKERS > 1)."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"

RECORDS_ACCEPTED = Counter("ingest_records_accepted_total", "Records acknowledged by Kafka.", ["entity"])
RECORDS_REJECTED = Counter(
    "ingest_records_rejected_total",
    "Records or requests refused, by reason (invalid, not_json, too_large, unauthorized, busy, kafka_unavailable, "
    "topic_missing).",
    ["entity", "reason"],
)
KAFKA_ERRORS = Counter("ingest_kafka_errors_total", "Records Kafka did not acknowledge in time.", ["entity"])
REQUEST_LATENCY = Histogram(
    "ingest_request_duration_seconds",
    "Request handling time by route, method and status code.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
KAFKA_CONNECTED = Gauge(
    "ingest_kafka_producer_connected",
    "1 when the Kafka producer exists (in every live worker).",
    multiprocess_mode="livemin",
)


def render() -> tuple[bytes, str]:
    """The current metrics in the Prometheus text format, with their content type."""
    if MULTIPROC_DIR in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def forget_this_worker() -> None:
    """Drop this process's live gauges from the shared figures as it stops (its counters stay counted)."""
    if MULTIPROC_DIR in os.environ:
        mark_process_dead(os.getpid())
