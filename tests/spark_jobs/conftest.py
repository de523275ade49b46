"""Fixtures of the Spark job tests: one local SparkSession per test session, and a raw lake on local disk."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from include.lake import SUCCESS_NAME, manifest_key, partition_prefix

RawLine = dict[str, Any]
WriteRaw = Callable[..., list[str]]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A small local session shared by every Spark test (the jobs' ``build_session`` reuses it)."""
    session = (
        SparkSession.builder.master("local[2]")
        .appName("spark-jobs-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    yield session
    session.stop()
    # py4j logs its shutdown at interpreter exit, after pytest has closed the streams its handlers write to.
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture
def write_raw(tmp_path: Path) -> WriteRaw:
    """Write a raw partition under ``tmp_path`` (the lake root): JSONL objects, their manifest, ``_SUCCESS`` last.

    ``files`` is a list of line lists, one object each; names ending in ``.gz`` are gzipped.
    Returns the keys written. ``manifest=False`` leaves the manifest out, ``success=False`` the ``_SUCCESS``
    marker (a drain that has not finished); ``accepted_partial`` marks a partial day kept as final.
    """

    def write(
        entity: str,
        day: date,
        files: Sequence[Sequence[RawLine]],
        *,
        gzipped: Sequence[bool] | None = None,
        manifest: bool = True,
        success: bool = True,
        status: str = "complete",
        accepted_partial: dict[str, str] | None = None,
    ) -> list[str]:
        prefix = partition_prefix("raw", entity, day)
        entries, keys = [], []
        for number, lines in enumerate(files):
            zipped = bool(gzipped and gzipped[number])
            key = f"{prefix}part-{number:05d}.jsonl" + (".gz" if zipped else "")
            body = "".join(json.dumps(line) + "\n" for line in lines).encode()
            data = gzip.compress(body) if zipped else body
            path = tmp_path / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            offsets = [line["offset"] for line in lines] or [0]
            entries.append(
                {
                    "key": key,
                    "partition": 0,
                    "first_offset": min(offsets),
                    "last_offset": max(offsets),
                    "count": len(lines),
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
            keys.append(key)
        if manifest:
            path = tmp_path / manifest_key(entity, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            document = {"status": status, "files": entries}
            if accepted_partial is not None:
                document["accepted_partial"] = accepted_partial
            path.write_text(json.dumps(document))
        if success:
            (tmp_path / prefix).mkdir(parents=True, exist_ok=True)
            (tmp_path / prefix / SUCCESS_NAME).write_bytes(b"")
        return keys

    return write
