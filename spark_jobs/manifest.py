"""The raw partition's ``_manifest.json``: the list of files a job reads (the prefix is never listed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pyspark.sql import SparkSession


class ManifestError(ValueError):
    """The manifest is missing or does not describe the partition it sits in."""


@dataclass(frozen=True)
class Manifest:
    """What the drain wrote for one raw partition."""

    status: Literal["complete", "partial"]
    keys: tuple[str, ...]


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
    return Manifest(status=status, keys=tuple(keys))


def read_text(spark: SparkSession, url: str) -> str | None:
    """The UTF-8 text of one file through Hadoop's filesystem (s3a settings and credentials apply); None if absent.

    Spark's DataFrame readers skip names starting with ``_``, so the manifest is read with the FileSystem API.
    """
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(url)
    filesystem = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not filesystem.exists(path):
        return None
    stream = filesystem.open(path)
    try:
        return bytes(stream.readAllBytes()).decode("utf-8")
    finally:
        stream.close()


def read_manifest(spark: SparkSession, url: str, partition_prefix: str) -> Manifest:
    """Read and check the manifest at ``url``; a missing one is an error that says what to do."""
    text = read_text(spark, url)
    if text is None:
        raise ManifestError(
            f"no manifest at {url}: the raw partition has not been drained; run the drain for this date first"
        )
    return parse_manifest(text, partition_prefix)
