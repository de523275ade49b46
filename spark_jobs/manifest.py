"""Raw partition manifests as the Spark jobs read them, the quality gate's verdict on them, and the
``_source.json`` a clean partition gets.

A raw partition's ``_manifest.json`` is the list of files a job reads (the prefix is never listed), and its
``_SUCCESS`` says the drain that wrote it has finished. Its ``_dq.json`` (``include.drain.quality``) says whether
the quality gate passed that very manifest. A clean partition's ``_source.json`` names the raw
data it was cleaned from (the SHA-256 of the manifest's status and files), so a day re-drained with other data
shows as not cleaned. Spark's DataFrame readers
skip names starting with ``_``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from pyspark.sql import SparkSession

from include.drain.quality import QualityReport
from include.lake import MANIFEST_NAME, SUCCESS_NAME, RawStatus
from spark_jobs.failures import RefusedDataError
from spark_jobs.lake_fs import exists, read_text


class ManifestError(ValueError):
    """The raw partition has no committed manifest (yet: its drain has not finished, or never ran), or one that cannot
    be used (BadManifestError)."""


class BadManifestError(ManifestError, RefusedDataError):
    """The manifest does not describe the partition it sits in; a retry reads the same one."""


class ChangedRawDataError(RefusedDataError):
    """A raw object is not what its manifest says (missing, another size, other lines): it changed after the drain."""


class DrainedAgainError(Exception):
    """Another run drained the day again since the manifest this job read was gated or read: that run's own gate
    has yet to pass the new manifest, so a retry (exit code 1, not a refusal) may find the day ready."""


class UngatedDataError(RefusedDataError):
    """The quality gate has not passed the raw partition's manifest: no ``_dq.json``, a failed one, or one of another
    manifest of the same drain run. The gate runs before the clean job in the DAG, so a retry of the clean job reads
    the same report (another run's drain since is ``DrainedAgainError``)."""


@dataclass(frozen=True)
class Manifest:
    """What the drain wrote for one raw partition."""

    status: RawStatus
    keys: tuple[str, ...]
    sha256: str  # of the manifest's text
    data_sha256: str  # of the status and each file's key and checksum: what was drained, without run metadata
    accepted_partial: bool = False  # a partial day Kafka can no longer complete, kept as final by an operator
    run_id: str | None = None  # of the drain that wrote it
    sizes: tuple[int | None, ...] = ()  # each listed file's bytes, as ``keys`` (None: the manifest gives none)
    lines: int | None = None  # the records of all files together (None: a file's count is missing)


REDRAIN = (
    "drain the day again (clear the drain task of that day's run together with its downstream tasks) while Kafka "
    "still holds it, or restore the object"
)
_REGATE = (
    "clear the drain task of that day's run together with its downstream tasks (quality_gate, spark_clean, "
    "spark_analytics), or clear its quality_gate task with its downstream tasks, so the gate checks the manifest "
    "before it is cleaned"
)


def gate_refusal(report_text: str | None, manifest: Manifest) -> str | None:
    """Why the quality gate's ``_dq.json`` (its text; None when absent) does not let ``manifest`` be cleaned, with
    what to do; None when it does: a report of this very manifest (the SHA-256 of its bytes) that passed.

    A partial day, accepted as final or not, needs one like any other: the gate checks it as it is, and accepting
    it writes a new manifest that the accepting run's gate checks again.
    """
    if report_text is None:
        return f"it has no quality report (_dq.json): the gate has not checked it since it was drained; {_REGATE}"
    try:
        report = QualityReport.model_validate_json(report_text)
    except ValidationError as error:
        return (
            f"its _dq.json is not a report naming the manifest it checked ({error.error_count()} problems, first: "
            f"{'.'.join(map(str, error.errors()[0]['loc']))}: {error.errors()[0]['msg']}); a gate from before "
            f"reports named their manifest wrote it, or it was edited; {_REGATE}"
        )
    if report.manifest_sha256 != manifest.sha256:
        by = "the same run" if report.manifest_run_id == manifest.run_id else f"drain run {manifest.run_id!r}"
        return (
            f"its _dq.json checked another manifest (drain run {report.manifest_run_id!r}, sha256 "
            f"{report.manifest_sha256[:12]}…) than the one there now (sha256 {manifest.sha256[:12]}…, written by "
            f"{by}): the day was drained again after the gate; {_REGATE}"
        )
    if not report.passed:
        return (
            f"the quality gate failed it ({'; '.join(report.failures)}): a retry reads the same data. Drain the day "
            "again once its source is fixed, or rerun the day with thresholds that accept it (run conf)"
        )
    return None


def checked_run_replaced(report_text: str | None, manifest: Manifest) -> str | None:
    """The drain run whose manifest the gate's report checked, when another drain run has replaced it with
    ``manifest`` since (whose own gate may still come: a second run of the day, a backfill next to the scheduled
    run); else None."""
    try:
        report = QualityReport.model_validate_json(report_text or "")
    except ValidationError:
        return None
    replaced = report.manifest_sha256 != manifest.sha256 and report.manifest_run_id != manifest.run_id
    return report.manifest_run_id if replaced else None


def source_json(manifest: Manifest, cleaned_at: datetime, run_id: str, attempt: int) -> str:
    """The ``_source.json`` of a clean partition cleaned from ``manifest`` by a try of a run; ``cleaned_at`` sets
    each write apart."""
    return json.dumps(
        {
            "raw_data_sha256": manifest.data_sha256,
            "raw_manifest_sha256": manifest.sha256,
            "raw_status": manifest.status,
            "cleaned_at": cleaned_at.isoformat(),
            "run_id": run_id,
            "attempt": attempt,
        }
    )


def cleaned_from(source_text: str, manifest: Manifest) -> bool:
    """Whether a ``_source.json`` names the raw data ``manifest`` lists.

    A re-drain that wrote the same objects (a retry, a rerun of a finished day) changes only the manifest's
    run metadata, so the data's identity is compared; a ``_source.json`` written before it carried one is
    compared by the manifest's whole text.
    """
    try:
        document = json.loads(source_text)
    except json.JSONDecodeError:
        return False
    if not isinstance(document, dict):
        return False
    if "raw_data_sha256" in document:
        return document["raw_data_sha256"] == manifest.data_sha256
    return document.get("raw_manifest_sha256") == manifest.sha256


def data_sha256(status: str, files: list[dict[str, Any]]) -> str:
    """The identity of a raw partition's data: its status and each file's key and checksum, in manifest order."""
    listed = [[entry.get("key"), entry.get("sha256")] for entry in files]
    return hashlib.sha256(json.dumps({"status": status, "files": listed}).encode()).hexdigest()


def parse_manifest(text: str, partition_prefix: str) -> Manifest:
    """Parse and check a manifest: a known status, and every listed key inside ``partition_prefix``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadManifestError(f"manifest of {partition_prefix} is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise BadManifestError(f"manifest of {partition_prefix} is not a JSON object")
    status = document.get("status")
    if status not in ("complete", "partial"):
        raise BadManifestError(f"manifest of {partition_prefix} has status {status!r}, expected complete or partial")
    files = document.get("files")
    if not isinstance(files, list) or not all(isinstance(entry, dict) for entry in files):
        raise BadManifestError(f"manifest of {partition_prefix} has no list of file objects under 'files'")
    keys = []
    for entry in files:
        key = entry.get("key")
        name = key[len(partition_prefix) :] if isinstance(key, str) and key.startswith(partition_prefix) else ""
        if not name or "/" in name:  # a file right inside the partition, as the drain writes them
            raise BadManifestError(
                f"manifest of {partition_prefix} lists {key!r}, which is not a file of the partition"
            )
        keys.append(key)
    counts = [entry.get("count") for entry in files]
    return Manifest(
        status=status,
        keys=tuple(keys),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        data_sha256=data_sha256(status, files),
        accepted_partial=document.get("accepted_partial") is not None,
        run_id=document.get("run_id"),
        sizes=tuple(_whole_number(entry.get("bytes")) for entry in files),
        lines=sum(counts) if all(_whole_number(count) is not None for count in counts) else None,
    )


def _whole_number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def read_manifest(spark: SparkSession, partition_url: str, partition_prefix: str) -> Manifest:
    """Read and check the manifest of the raw partition at ``partition_url`` (ending in ``/``).

    ``_SUCCESS`` is checked first, so the manifest read is one a finished drain committed. A missing manifest,
    or one without the drain's ``_SUCCESS`` next to it, is an error that says what to do.
    """
    if not exists(spark, partition_url + SUCCESS_NAME):
        raise ManifestError(
            f"no _SUCCESS at {partition_url}: the drain has not finished or failed; "
            "wait for it, or rerun the drain for this date, before cleaning"
        )
    url = partition_url + MANIFEST_NAME
    text = read_text(spark, url)
    if text is None:
        raise ManifestError(
            f"no manifest at {url}: the raw partition has not been drained; run the drain for this date first"
        )
    return parse_manifest(text, partition_prefix)
