"""The quality gate: after the drains, check each raw partition of a day and write its ``_dq.json``.

Per entity: the record count, the quarantine share, the share of duplicate Kafka keys, and
the ``ind`` match rate (share of the entity's distinct ``ind`` values that the two other
entities of the same day also have). It also re-reads every object the manifest lists and
checks its line count, size and SHA-256. Any metric beyond its threshold fails the gate,
after every report has been written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from include import lake
from include.drain.errors import ManifestChangedError, QualityGateError
from include.drain.manifest import FileEntry, Manifest
from include.drain.s3_errors import is_missing
from include.records import ENTITIES, Entity

log = logging.getLogger(__name__)

IND_FIELD: dict[Entity, str] = {"pin": "index", "geo": "ind", "user": "ind"}


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
    status: str
    checked_at: datetime
    metrics: QualityMetrics
    thresholds: QualityThresholds
    failures: list[str]
    passed: bool


@dataclass
class _Scan:
    """What one pass over an entity's objects found."""

    key_hashes: set[int]
    inds: set[int]
    lines: int
    problems: list[str]


def _scan(s3: Any, bucket: str, entity: Entity, files: list[FileEntry]) -> _Scan:
    """Stream every listed object once: keys, ``ind`` values, and whether each matches its manifest entry."""
    ind_field = IND_FIELD[entity]
    scan = _Scan(set(), set(), 0, [])
    for entry in files:
        try:
            body = s3.get_object(Bucket=bucket, Key=entry.key)["Body"]
        except ClientError as exc:
            if not is_missing(exc):
                raise  # S3 unavailable or refusing: the task retries
            scan.problems.append(f"{entry.key} listed in the manifest is missing")
            continue
        digest, size, lines, rest, unreadable = hashlib.sha256(), 0, 0, b"", None
        for chunk in body.iter_chunks(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            *complete, rest = (rest + chunk).split(b"\n")
            for number, line in enumerate(complete, start=lines + 1):
                try:
                    record = json.loads(line)
                    scan.key_hashes.add(hash(record["key"]))
                    ind = record["value"].get(ind_field)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    unreadable = unreadable or f"{entry.key} line {number} is not a raw record line ({exc!r:.200})"
                    continue
                if isinstance(ind, int):
                    scan.inds.add(ind)
            lines += len(complete)
        if unreadable:
            scan.problems.append(unreadable)
        if rest:
            scan.problems.append(f"{entry.key} does not end with a newline")
        if (lines, size, digest.hexdigest()) != (entry.count, entry.bytes, entry.sha256):
            scan.problems.append(
                f"{entry.key} holds {lines} lines, {size} bytes, sha256 {digest.hexdigest()[:12]}…; "
                f"the manifest says {entry.count}, {entry.bytes}, {entry.sha256[:12]}…"
            )
        scan.lines += lines
    return scan


def match_rate(own: set[int], others: list[set[int]]) -> float | None:
    """Share of ``own`` found in every set of ``others``; None when ``own`` is empty."""
    if not own:
        return None
    return len({ind for ind in own if all(ind in other for other in others)}) / len(own)


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


def _manifest(s3: Any, bucket: str, entity: Entity, day: date) -> tuple[Manifest, str]:
    """The entity's manifest of ``day`` and its ETag."""
    key = lake.manifest_key(entity, day)
    try:
        reply = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if not is_missing(exc):
            raise  # S3 unavailable or refusing: the task retries
        raise QualityGateError(f"no manifest at s3://{bucket}/{key}: drain {entity} for {day} first") from exc
    return Manifest.model_validate_json(reply["Body"].read()), reply["ETag"]


def _refuse_changed(s3: Any, bucket: str, day: date, etags: dict[Entity, str]) -> None:
    """Raise ManifestChangedError when a manifest is no longer the one read: its objects may be gone meanwhile."""
    for entity, etag in etags.items():
        key = lake.manifest_key(entity, day)
        try:
            now = s3.head_object(Bucket=bucket, Key=key)["ETag"]
        except ClientError as exc:
            if not is_missing(exc):
                raise
            now = None
        if now != etag:
            raise ManifestChangedError(
                f"s3://{bucket}/{key} changed while the quality gate read it (another drain of {day} committed): "
                "nothing was written; a retry checks the new manifest"
            )


def run_quality_gate(
    s3: Any,
    bucket: str,
    day: date,
    run_id: str,
    thresholds: QualityThresholds | None = None,
) -> dict[str, QualityReport]:
    """Check every entity's raw partition of ``day``, write each ``_dq.json``, raise if any check failed."""
    thresholds = thresholds or QualityThresholds()
    read = {e: _manifest(s3, bucket, e, day) for e in ENTITIES}
    manifests = {e: manifest for e, (manifest, _) in read.items()}
    scans = {e: _scan(s3, bucket, e, m.files) for e, m in manifests.items()}
    _refuse_changed(s3, bucket, day, {e: etag for e, (_, etag) in read.items()})
    reports: dict[str, QualityReport] = {}
    for entity, manifest in manifests.items():
        scan = scans[entity]
        others = [scans[o].inds for o in ENTITIES if o != entity]
        count = manifest.record_count
        distinct = len(scan.key_hashes)
        metrics = QualityMetrics(
            record_count=count,
            quarantined=manifest.quarantine.count,
            quarantine_share=manifest.quarantine.share,
            late_records=sum(p.late for p in manifest.partitions),
            distinct_keys=distinct,
            duplicate_keys=count - distinct,
            duplicate_key_share=(count - distinct) / count if count else 0.0,
            distinct_ind=len(scan.inds),
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
            status=manifest.status,
            checked_at=datetime.now(UTC),
            metrics=metrics,
            thresholds=thresholds,
            failures=failures,
            passed=not failures,
        )
        s3.put_object(
            Bucket=bucket,
            Key=lake.dq_key(entity, day),
            Body=report.model_dump_json(indent=2).encode(),
            ContentType="application/json",
        )
        reports[entity] = report
        log.info("quality of %s %s: %s", entity, day, "passed" if report.passed else "; ".join(failures))
    failed = {e: r.failures for e, r in reports.items() if not r.passed}
    if failed:
        detail = "; ".join(f"{e}: {', '.join(f)}" for e, f in failed.items())
        raise QualityGateError(f"quality gate failed for {day}: {detail} (reports in _dq.json next to each manifest)")
    return reports
