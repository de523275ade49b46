"""The quality gate: after the drains, check each raw partition of a day and write its ``_dq.json``.

Per entity: the record count, the quarantine share, the share of duplicate Kafka keys, and
the ``ind`` match rate (share of the entity's distinct ``ind`` values that the two other
entities of the same day also have). It also re-reads every object the manifest lists and
checks its line count, size and SHA-256 (a ``.gz`` object's lines are read as Spark reads them,
decompressed). Any metric beyond its threshold fails the gate, after every report has been written.

Each report names the manifest it checked: its run id and the SHA-256 of its bytes, which differ
for every manifest write (a re-drain, or a partial day accepted as final). The clean job cleans
only a day whose report passed and names the manifest the day has now (``spark_jobs.manifest``).
The gate reads the lake's bucket (``run_quality_gate``), or a local folder (``FolderObjects``)
for raw days written without the DAG (``include.emulator.local_lake``).
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec
import numpy as np
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from include import lake
from include.drain.errors import ManifestChangedError, QualityGateError
from include.drain.manifest import FileEntry, Manifest, read_manifest
from include.drain.s3_errors import is_missing
from include.records import ENTITIES, Entity

log = logging.getLogger(__name__)

IND_FIELD: dict[Entity, str] = {"pin": "index", "geo": "ind", "user": "ind"}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
CHUNK_BYTES = 1 << 20


class QualityThresholds(BaseModel):
    """Limits of the gate; a metric beyond its limit fails the run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_quarantine_share: float = 0.01
    max_duplicate_key_share: float = 0.5
    min_ind_match_rate: float = 0.9
    min_records: int = 0


class QualityMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    record_count: int
    quarantined: int
    quarantine_share: float
    late_records: int  # records of the day that arrived later than the grace (see the manifest's partitions)
    distinct_keys: int
    duplicate_keys: int
    duplicate_key_share: float
    distinct_ind: int
    ind_match_rate: float | None
    files_checked: int


class QualityReport(BaseModel):
    """``_dq.json`` of ``raw/<entity>/dt=<day>/``."""

    model_config = ConfigDict(frozen=True)

    entity: str
    dt: date
    gate_run_id: str
    manifest_run_id: str
    manifest_sha256: str  # of the manifest's bytes as the gate read them: names that manifest write
    status: str
    checked_at: datetime
    metrics: QualityMetrics
    thresholds: QualityThresholds
    failures: list[str]
    passed: bool


class RawObjects(Protocol):
    """Where the gate reads a raw day and writes its reports: the lake's bucket, or a local folder."""

    def url(self, key: str) -> str:
        """Where ``key`` is, for messages."""

    def read(self, key: str) -> tuple[bytes, str] | None:
        """A small object's bytes and version (its ETag), or None when it is missing."""

    def version(self, key: str) -> str | None:
        """The object's version now, or None when it is missing."""

    def chunks(self, key: str) -> Iterator[bytes] | None:
        """The object's bytes, streamed, or None when it is missing."""

    def write_json(self, key: str, body: bytes) -> None:
        """Write (or replace) a small JSON object."""


@dataclass(frozen=True)
class S3Objects:
    """The lake's bucket. An S3 error other than a missing key is raised: the gate's task retries."""

    s3: Any
    bucket: str

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _get(self, key: str) -> dict[str, Any] | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise

    def read(self, key: str) -> tuple[bytes, str] | None:
        reply = self._get(key)
        return None if reply is None else (reply["Body"].read(), reply["ETag"])

    def version(self, key: str) -> str | None:
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)["ETag"]
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise

    def chunks(self, key: str) -> Iterator[bytes] | None:
        reply = self._get(key)
        return None if reply is None else reply["Body"].iter_chunks(CHUNK_BYTES)

    def write_json(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")


@dataclass(frozen=True)
class FolderObjects:
    """A lake on local disk (``--lake-root file://…``); an object's version is the SHA-256 of its bytes."""

    root: Path

    def url(self, key: str) -> str:
        return (self.root / key).as_uri()

    def read(self, key: str) -> tuple[bytes, str] | None:
        try:
            body = (self.root / key).read_bytes()
        except FileNotFoundError:
            return None
        return body, hashlib.sha256(body).hexdigest()

    def version(self, key: str) -> str | None:
        found = self.read(key)
        return None if found is None else found[1]

    def chunks(self, key: str) -> Iterator[bytes] | None:
        path = self.root / key
        return _file_chunks(path) if path.is_file() else None

    def write_json(self, key: str, body: bytes) -> None:
        (self.root / key).parent.mkdir(parents=True, exist_ok=True)
        (self.root / key).write_bytes(body)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


@dataclass
class _Scan:
    """What one pass over an entity's objects found."""

    distinct_keys: int
    inds: np.ndarray  # the distinct integer ``ind`` values, sorted
    lines: int
    problems: list[str]


def distinct_int64(values: array) -> np.ndarray:
    """The distinct values of an ``array('q')``, sorted; sorts ``values`` in place (8 bytes a value, where a set of
    Python ints takes about 70, and no copy of them but the distinct ones)."""
    view = np.frombuffer(values, dtype=np.int64) if values else np.empty(0, dtype=np.int64)
    view.sort()
    first = np.empty(view.size, dtype=bool)
    first[:1] = True
    np.not_equal(view[1:], view[:-1], out=first[1:])
    return view[first]


def line_decoder(entity: Entity) -> msgspec.json.Decoder:
    """Decodes a raw record line to its ``key`` and its value's ``ind`` field (None when absent).

    A line that is not JSON, not an object, or lacks ``key`` or a ``value`` object is refused (``msgspec.DecodeError``).
    The value's other fields are checked for JSON syntax and skipped, not built: about 7 times faster than
    ``json.loads``, the gate's largest cost (UTF-8 is checked on the whole line apart).
    """
    value = msgspec.defstruct(f"{entity.capitalize()}Ind", [(IND_FIELD[entity], Any, None)])
    return msgspec.json.Decoder(msgspec.defstruct("RawLine", [("key", Any), ("value", value)]))


def _scan(objects: RawObjects, entity: Entity, files: list[FileEntry]) -> _Scan:
    """Stream every listed object once: keys, ``ind`` values, and whether each matches its manifest entry."""
    ind_field, decode = IND_FIELD[entity], line_decoder(entity).decode
    key_hashes, inds, total, problems = array("q"), array("q"), 0, []
    for entry in files:
        chunks = objects.chunks(entry.key)
        if chunks is None:
            problems.append(f"{entry.key} listed in the manifest is missing")
            continue
        gzipped = zlib.decompressobj(16 + zlib.MAX_WBITS) if entry.key.endswith(".gz") else None
        digest, size, lines, rest, unreadable = hashlib.sha256(), 0, 0, b"", None
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            *complete, rest = (rest + (gzipped.decompress(chunk) if gzipped else chunk)).split(b"\n")
            for number, line in enumerate(complete, start=lines + 1):
                try:
                    line.decode()  # UTF-8, including the fields the decoder skips
                    record = decode(line)
                    key_hash = hash(record.key)  # TypeError for a key that is a list or an object
                    ind = getattr(record.value, ind_field)
                except (ValueError, TypeError) as exc:  # msgspec.DecodeError is a ValueError
                    unreadable = unreadable or f"{entry.key} line {number} is not a raw record line ({exc!r:.200})"
                    continue
                key_hashes.append(key_hash)
                if isinstance(ind, int) and INT64_MIN <= ind <= INT64_MAX:  # a record's ind always is
                    inds.append(ind)
            lines += len(complete)
        if unreadable:
            problems.append(unreadable)
        if gzipped and not gzipped.eof:
            problems.append(f"{entry.key} is not a whole gzip stream")
        if rest:
            problems.append(f"{entry.key} does not end with a newline")
        if (lines, size, digest.hexdigest()) != (entry.count, entry.bytes, entry.sha256):
            problems.append(
                f"{entry.key} holds {lines} lines, {size} bytes, sha256 {digest.hexdigest()[:12]}…; "
                f"the manifest says {entry.count}, {entry.bytes}, {entry.sha256[:12]}…"
            )
        total += lines
    distinct_keys = len(distinct_int64(key_hashes))
    del key_hashes  # freed before the ind values are sorted
    return _Scan(distinct_keys, distinct_int64(inds), total, problems)


def match_rate(own: np.ndarray, others: list[np.ndarray]) -> float | None:
    """Share of the distinct values ``own`` found in every array of distinct values of ``others``; None when ``own``
    is empty."""
    if not own.size:
        return None
    found = np.ones(own.size, dtype=bool)
    for other in others:
        found &= np.isin(own, other, assume_unique=True)
    return int(found.sum()) / own.size


def failures_of(metrics: QualityMetrics, thresholds: QualityThresholds) -> list[str]:
    """The thresholds a partition's metrics break, in words."""
    found = []
    if metrics.record_count < thresholds.min_records:
        found.append(f"record_count {metrics.record_count} < min_records {thresholds.min_records}")
    if metrics.quarantine_share > thresholds.max_quarantine_share:
        found.append(f"quarantine_share {metrics.quarantine_share:.4f} > {thresholds.max_quarantine_share}")
    if metrics.duplicate_key_share > thresholds.max_duplicate_key_share:
        found.append(f"duplicate_key_share {metrics.duplicate_key_share:.4f} > {thresholds.max_duplicate_key_share}")
    if metrics.ind_match_rate is not None and metrics.ind_match_rate < thresholds.min_ind_match_rate:
        found.append(f"ind_match_rate {metrics.ind_match_rate:.4f} < {thresholds.min_ind_match_rate}")
    return found


@dataclass(frozen=True)
class _Read:
    """An entity's manifest as the gate read it: parsed, its bytes, and their version."""

    manifest: Manifest
    body: bytes
    version: str


def _manifest(objects: RawObjects, entity: Entity, day: date) -> _Read:
    """The entity's manifest of ``day``."""
    key = lake.manifest_key(entity, day)
    found = objects.read(key)
    if found is None:
        raise QualityGateError(f"no manifest at {objects.url(key)}: drain {entity} for {day} first")
    body, version = found
    try:
        return _Read(read_manifest(body, objects.url(key)), body, version)
    except ValueError as exc:
        raise QualityGateError(str(exc)) from exc


def _refuse_changed(objects: RawObjects, day: date, versions: dict[Entity, str]) -> None:
    """Raise ManifestChangedError when a manifest is no longer the one read: its objects may be gone meanwhile."""
    for entity, version in versions.items():
        key = lake.manifest_key(entity, day)
        if objects.version(key) != version:
            raise ManifestChangedError(
                f"{objects.url(key)} changed while the quality gate read it (another drain of {day} committed): "
                "nothing was written; a retry checks the new manifest"
            )


def run_quality_gate(
    s3: Any,
    bucket: str,
    day: date,
    run_id: str,
    thresholds: QualityThresholds | None = None,
    entities: Sequence[Entity] = ENTITIES,
) -> dict[str, QualityReport]:
    """Check every entity's raw partition of ``day`` in ``bucket``, write each ``_dq.json``, raise if any check
    failed."""
    return check_day(S3Objects(s3, bucket), day, run_id, thresholds, entities)


def check_day(
    objects: RawObjects,
    day: date,
    run_id: str,
    thresholds: QualityThresholds | None = None,
    entities: Sequence[Entity] = ENTITIES,
) -> dict[str, QualityReport]:
    """Check the raw partitions of ``day`` of ``entities`` (their ``ind`` values are matched against each other's:
    the DAG checks all three), write each ``_dq.json``, raise QualityGateError if any check failed."""
    thresholds = thresholds or QualityThresholds()
    read = {e: _manifest(objects, e, day) for e in entities}
    scans = {e: _scan(objects, e, r.manifest.files) for e, r in read.items()}
    _refuse_changed(objects, day, {e: r.version for e, r in read.items()})
    reports: dict[str, QualityReport] = {}
    for entity, found in read.items():
        manifest, scan = found.manifest, scans[entity]
        others = [scans[o].inds for o in entities if o != entity]
        count = manifest.record_count
        distinct = scan.distinct_keys
        read = scan.lines  # duplicates among the records read: an object missing is a failure of its own
        metrics = QualityMetrics(
            record_count=count,
            quarantined=manifest.quarantine.count,
            quarantine_share=manifest.quarantine.share,
            late_records=sum(p.late for p in manifest.partitions),
            distinct_keys=distinct,
            duplicate_keys=read - distinct,
            duplicate_key_share=(read - distinct) / read if read else 0.0,
            distinct_ind=int(scan.inds.size),
            ind_match_rate=match_rate(scan.inds, others) if others else None,
            files_checked=len(manifest.files),
        )
        failures = scan.problems + failures_of(metrics, thresholds)
        if scan.lines != count:
            failures.append(f"objects hold {scan.lines} records, the manifest says {count}")
        report = QualityReport(
            entity=entity,
            dt=day,
            gate_run_id=run_id,
            manifest_run_id=manifest.run_id,
            manifest_sha256=hashlib.sha256(found.body).hexdigest(),
            status=manifest.status,
            checked_at=datetime.now(UTC),
            metrics=metrics,
            thresholds=thresholds,
            failures=failures,
            passed=not failures,
        )
        objects.write_json(lake.dq_key(entity, day), report.model_dump_json(indent=2).encode())
        reports[entity] = report
        log.info("quality of %s %s: %s", entity, day, "passed" if report.passed else "; ".join(failures))
    failed = {e: r.failures for e, r in reports.items() if not r.passed}
    if failed:
        detail = "; ".join(f"{e}: {', '.join(f)}" for e, f in failed.items())
        raise QualityGateError(f"quality gate failed for {day}: {detail} (reports in _dq.json next to each manifest)")
    return reports
