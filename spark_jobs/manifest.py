"""Raw partition manifests as the Spark jobs read them, and the ``_source.json`` a clean partition gets.

A raw partition's ``_manifest.json`` is the list of files a job reads (the prefix is never listed), and its
``_SUCCESS`` says the drain that wrote it has finished. A clean partition's ``_source.json`` names the raw
manifest it was cleaned from (its SHA-256), so a re-drained day shows as not cleaned. Spark's DataFrame readers
skip names starting with ``_``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pyspark.sql import SparkSession

from include.lake import MANIFEST_NAME, SUCCESS_NAME
from spark_jobs.lake_fs import exists, read_text


class ManifestError(ValueError):
    """The manifest is missing, not committed, or does not describe the partition it sits in."""


@dataclass(frozen=True)
class Manifest:
    """What the drain wrote for one raw partition."""

    status: Literal["complete", "partial"]
    keys: tuple[str, ...]
    sha256: str  # of the manifest's text: the identity of what was drained


def source_json(manifest: Manifest, cleaned_at: datetime) -> str:
    """The ``_source.json`` of a clean partition cleaned from ``manifest``; ``cleaned_at`` sets each write apart."""
    return json.dumps(
        {"raw_manifest_sha256": manifest.sha256, "raw_status": manifest.status, "cleaned_at": cleaned_at.isoformat()}
    )


def source_sha256(text: str) -> str | None:
    """The raw manifest SHA-256 a ``_source.json`` names; None when it is not one."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None
    digest = document.get("raw_manifest_sha256") if isinstance(document, dict) else None
    return digest if isinstance(digest, str) else None


def parse_manifest(text: str, partition_prefix: str) -> Manifest:
    """Parse and check a manifest: a known status, and every listed key inside ``partition_prefix``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(f"manifest of {partition_prefix} is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise ManifestError(f"manifest of {partition_prefix} is not a JSON object")
    status = document.get("status")
    if status not in ("complete", "partial"):
        raise ManifestError(f"manifest of {partition_prefix} has status {status!r}, expected complete or partial")
    files = document.get("files")
    if not isinstance(files, list) or not all(isinstance(entry, dict) for entry in files):
        raise ManifestError(f"manifest of {partition_prefix} has no list of file objects under 'files'")
    keys = []
    for entry in files:
        key = entry.get("key")
        if not isinstance(key, str) or not key.startswith(partition_prefix) or key == partition_prefix:
            raise ManifestError(f"manifest of {partition_prefix} lists {key!r}, which is not a file of the partition")
        keys.append(key)
    return Manifest(status=status, keys=tuple(keys), sha256=hashlib.sha256(text.encode()).hexdigest())


def read_manifest(spark: SparkSession, partition_url: str, partition_prefix: str) -> Manifest:
    """Read and check the manifest of the raw partition at ``partition_url`` (ending in ``/``).

    ``_SUCCESS`` is checked first, so the manifest read is one a finished drain committed. A missing manifest,
    or one without the drain's ``_SUCCESS`` next to it, is an error that says what to do.
    """
    if not exists(spark, partition_url + SUCCESS_NAME):
        raise ManifestError(
            f"no _SUCCESS at {partition_url}: the drain has not finished or is being rerun; "
            "wait for it, or rerun the drain for this date, before cleaning"
        )
    url = partition_url + MANIFEST_NAME
    text = read_text(spark, url)
    if text is None:
        raise ManifestError(
            f"no manifest at {url}: the raw partition has not been drained; run the drain for this date first"
        )
    return parse_manifest(text, partition_prefix)
