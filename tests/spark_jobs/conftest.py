"""Fixtures of the Spark job tests: one local SparkSession per test session, and a raw lake on local disk."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from include.drain.manifest import AcceptedPartial
from include.emulator.local_lake import drain_manifest, file_entry, gate_local_day
from include.lake import SUCCESS_NAME, manifest_key, partition_prefix
from spark_jobs import clean
from tests.spark_jobs.lake_days import DAYS, WriteRaw, run, seed_day, triple

RawLine = dict[str, Any]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """A small local session shared by every Spark test (the jobs' ``build_session`` reuses it)."""
    session = (
        SparkSession.builder.master("local[2]")
        .appName("spark-jobs-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "2g")  # room to spare: a test that exhausted the heap would take the rest down
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
    """Write a raw partition under ``tmp_path`` (the lake root) as the DAG leaves it: JSONL objects, their manifest
    (the drain's model), ``_SUCCESS``, then the quality gate's ``_dq.json`` (the gate itself checks the entity's day).

    ``files`` is a list of line lists, one object each; names ending in ``.gz`` are gzipped.
    Returns the keys written. ``manifest=False`` leaves the manifest out, ``success=False`` the ``_SUCCESS``
    marker (a drain that has not finished), ``gate=False`` the gate; ``accepted_partial`` marks a partial day kept as
    final.
    """

    def write(
        entity: str,
        day: date,
        files: Sequence[Sequence[RawLine]],
        *,
        gzipped: Sequence[bool] | None = None,
        manifest: bool = True,
        success: bool = True,
        gate: bool = True,
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
            entries.append(file_entry(key, data, 0, [line["offset"] for line in lines]))
            keys.append(key)
        if manifest:
            accepted = AcceptedPartial.model_validate(accepted_partial) if accepted_partial else None
            document = drain_manifest(entity, day, entries, status, accepted)
            path = tmp_path / manifest_key(entity, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(document.to_json())
        if success:
            (tmp_path / prefix).mkdir(parents=True, exist_ok=True)
            (tmp_path / prefix / SUCCESS_NAME).write_bytes(b"")
        if gate and manifest:
            gate_local_day(tmp_path, day, [entity])
        return keys

    return write


@pytest.fixture
def drained(tmp_path: Path, write_raw: WriteRaw) -> Path:
    """Three drained days: pin 1 re-posted on day 2 with a new category, pins 3-5 only on day 3."""
    seed_day(write_raw, 0, [triple(1, "art", "Chad"), triple(2, "art", "Chad")])
    seed_day(write_raw, 1, [triple(1, "diy", "Chad")])
    seed_day(write_raw, 2, [triple(3, "travel", "Chad"), triple(4, "travel", "Chad"), triple(5, "travel", "Chad")])
    return tmp_path


@pytest.fixture
def lake(drained: Path) -> Path:
    """The three drained days, all cleaned."""
    for day in DAYS:
        run(clean, drained, day)
    return drained
