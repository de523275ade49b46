"""The manifest of a raw partition: what a drain wrote, and what readers (Spark) trust.

Readers take the file list from ``files[].key`` and check ``status``; they never list the prefix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from include.drain.interval import Status


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileEntry(_Frozen):
    """One object of records: its key and the Kafka offsets it holds."""

    key: str = Field(description="full S3 key")
    partition: int
    first_offset: int
    last_offset: int
    count: int
    bytes: int
    sha256: str


class PartitionSummary(_Frozen):
    """What the drain read from one Kafka partition and what it kept."""

    partition: int
    log_start_offset: int = Field(description="earliest offset Kafka still held")
    read_from: int = Field(description="first offset read: earliest with timestamp >= interval start")
    read_to: int = Field(
        description="offset where reading stopped (exclusive): the high watermark seen (last stable offset)"
    )
    late_from: int = Field(0, description="first offset timestamped at or after the interval end plus the grace")
    first_offset: int | None = Field(description="first offset kept in the partition, null when none")
    last_offset: int | None
    count: int = Field(description="records kept")
    quarantined: int
    outside_interval: int = Field(description="records read but timestamped outside the interval")
    late: int = Field(0, description="messages of the interval at offsets from late_from: later than the grace")
    bytes: int
    sha256: str = Field(description="SHA-256 of the partition's object checksums (hex) joined by newlines")


def partition_sha256(object_digests: Iterable[str]) -> str:
    """A partition's checksum: SHA-256 of its objects' SHA-256 (hex, in offset order) joined by newlines."""
    return hashlib.sha256("\n".join(object_digests).encode()).hexdigest()


class QuarantineSummary(_Frozen):
    """Messages that were not valid records, kept under ``quarantine/`` with offset and reason."""

    count: int
    share: float = Field(description="quarantined / (kept + quarantined)")
    max_share: float
    files: list[FileEntry]


class AcceptedPartial(_Frozen):
    """An operator's decision to keep a partial day that Kafka can no longer complete as final."""

    run_id: str
    accepted_at: datetime
    reason: str = Field(description="why Kafka can no longer complete the day, as the drain found it")


class Manifest(_Frozen):
    """``_manifest.json`` of ``raw/<entity>/dt=<day>/``."""

    format_version: int = 1
    entity: str
    dt: date
    topic: str
    topic_id: str | None = Field(None, description="Kafka's id of the topic drained (a recreated topic has another)")
    interval_start: datetime
    interval_end: datetime
    lateness_grace_seconds: float
    status: Status
    run_id: str
    drained_at: datetime
    record_count: int
    total_bytes: int
    files: list[FileEntry]
    partitions: list[PartitionSummary]
    quarantine: QuarantineSummary
    accepted_partial: AcceptedPartial | None = None

    def to_json(self) -> bytes:
        """The manifest as written to S3."""
        return self.model_dump_json(indent=2).encode()


def read_manifest(body: bytes, url: str) -> Manifest:
    """The manifest in ``body`` (read from ``url``); ValueError naming the URL and the first problem when it is not
    one."""
    try:
        return Manifest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "the top"
        newer = " (a field this version does not know: was it written by a newer version?)" * (
            first["type"] == "extra_forbidden"
        )
        raise ValueError(
            f"{url} is not a manifest the drain wrote ({exc.error_count()} problems, first: {first['msg']} at "
            f"{where}){newer}: restore the manifest, or delete the raw partition's objects and drain the day again "
            "once you know Kafka still holds all of the day (else its records may exist nowhere else)"
        ) from exc
