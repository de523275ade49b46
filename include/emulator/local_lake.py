"""A day of raw partitions written straight to a local folder, as the drain would leave them in S3.

For runs of the Spark jobs without Kafka or S3 (``--lake-root file:///…``): the benchmark, the
JVM class-data archive that ``devstack install`` trains, and the Spark jobs' tests. Each entity gets ``files``
JSON Lines objects (as if its topic had that many partitions; a key always lands in the same one), a
``_manifest.json`` listing them (the drain's model), ``_SUCCESS``, and then the quality gate's ``_dq.json``: the
gate itself checks the day (``gate_local_day``), as the DAG's does before the clean job, which cleans only a day the
gate passed. ``repost_percent`` of the triples re-post an earlier one, so de-duplication has work to do; the values
are the generator's own mix (``include.emulator.generate``): placeholders, empty texts, pins without ``poster_name``,
and geo timestamps and ``date_joined`` in both forms, plain and ISO-8601.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from datetime import date
from itertools import groupby
from pathlib import Path
from typing import Any

from include.days import midnight_ms
from include.drain.interval import Interval, Status
from include.drain.manifest import (
    AcceptedPartial,
    FileEntry,
    Manifest,
    PartitionSummary,
    QuarantineSummary,
    partition_sha256,
)
from include.drain.quality import FolderObjects, QualityReport, QualityThresholds, check_day
from include.emulator.generate import generate_triples
from include.lake import manifest_key, partition_prefix, success_key
from include.records import ENTITIES, KEY_FIELD, Entity

RUN_ID = "local-lake"  # the drain and gate "run" of every day written here


def _pool(size: int) -> list[dict[str, dict[str, Any]]]:
    """``size`` real-looking triples as JSON values, as the API would store them."""
    return [
        {e: json.loads(triple.record(e).model_dump_json(exclude_none=True)) for e in ENTITIES}
        for triple in generate_triples(seed=7, count=size, repeat_percent=0)
    ]


def file_entry(key: str, data: bytes, partition: int, offsets: Sequence[int]) -> FileEntry:
    """The manifest entry of the object ``key`` holding ``data``: the records at ``offsets`` of one Kafka partition."""
    return FileEntry(
        key=key,
        partition=partition,
        first_offset=min(offsets, default=0),
        last_offset=max(offsets, default=0),
        count=len(offsets),
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _partition_summary(partition: int, entries: list[FileEntry]) -> PartitionSummary:
    """What a drain reports of one Kafka partition whose kept records are ``entries``' (none late or quarantined)."""
    kept = [e for e in entries if e.count]
    first = kept[0].first_offset if kept else None
    last = kept[-1].last_offset if kept else None
    end = last + 1 if last is not None else 0
    return PartitionSummary(
        partition=partition,
        log_start_offset=0,
        read_from=first if first is not None else 0,
        read_to=end,
        late_from=end,
        first_offset=first,
        last_offset=last,
        count=sum(e.count for e in entries),
        quarantined=0,
        outside_interval=0,
        bytes=sum(e.bytes for e in entries),
        sha256=partition_sha256(e.sha256 for e in entries),
    )


def drain_manifest(
    entity: Entity,
    day: date,
    files: Sequence[FileEntry],
    status: Status = "complete",
    accepted_partial: AcceptedPartial | None = None,
) -> Manifest:
    """The manifest a drain of ``day`` would commit for ``files`` (from topic ``local.<entity>``, nothing
    quarantined); ``accepted_partial`` marks a partial day kept as final."""
    interval = Interval.for_day(day)
    by_partition = groupby(sorted(files, key=lambda e: (e.partition, e.first_offset)), key=lambda e: e.partition)
    return Manifest(
        entity=entity,
        dt=day,
        topic=f"local.{entity}",
        interval_start=interval.start,
        interval_end=interval.end,
        lateness_grace_seconds=0.0,
        status=status,
        run_id=RUN_ID,
        drained_at=interval.end,
        record_count=sum(e.count for e in files),
        total_bytes=sum(e.bytes for e in files),
        files=list(files),
        partitions=[_partition_summary(partition, list(entries)) for partition, entries in by_partition],
        quarantine=QuarantineSummary(count=0, share=0.0, max_share=0.01, files=[]),
        accepted_partial=accepted_partial,
    )


def gate_local_day(
    root: Path, day: date, entities: Sequence[Entity] = ENTITIES, thresholds: QualityThresholds | None = None
) -> dict[str, QualityReport]:
    """Run the quality gate on the raw partitions of ``day`` under ``root``, writing each ``_dq.json``.

    Raises QualityGateError, as in the DAG, when a check fails. A day rewritten since (another manifest) needs the
    gate again before the clean job takes it.
    """
    return check_day(FolderObjects(root), day, RUN_ID, thresholds, entities)


def write_raw_day(
    root: Path,
    day: date,
    triples: int,
    *,
    files: int = 4,
    pool_size: int = 20_000,
    repost_percent: float = 3.0,
    gate: bool = True,
    first_ind: int = 0,
) -> int:
    """Write ``triples`` triples of ``day`` under ``root`` (objects, manifests, ``_SUCCESS``, then the gate's
    ``_dq.json``; ``gate=False`` for a caller that changes the day before gating it); returns the bytes of the
    objects. Their keys are ``first_ind`` onwards, so days written with disjoint ranges share no record."""
    pool, rng = _pool(min(pool_size, triples)), random.Random(11)
    start_ms = midnight_ms(day)
    step_ms = 86_400_000 / triples
    prefixes = {e: partition_prefix("raw", e, day) for e in ENTITIES}
    for prefix in prefixes.values():
        (root / prefix).mkdir(parents=True, exist_ok=True)
    handles = {(e, f): (root / prefixes[e] / f"{f}-000000.jsonl").open("w") for e in prefixes for f in range(files)}
    counts = dict.fromkeys(handles, 0)
    try:
        for i in range(triples):
            ind = first_ind + (rng.randrange(i) if i and rng.random() * 100 < repost_percent else i)
            file = ind % files
            for entity, value in pool[ind % len(pool)].items():
                record = dict(value)
                if entity == "pin":
                    record["index"] = ind
                    record["unique_id"] = f"{ind:08x}-0000-4000-8000-000000000000"
                else:
                    record["ind"] = ind
                line = {"partition": file, "offset": counts[entity, file], "timestamp": start_ms + int(i * step_ms),
                        "key": str(record[KEY_FIELD[entity]]), "value": record}  # fmt: skip
                handles[entity, file].write(json.dumps(line) + "\n")
                counts[entity, file] += 1
    finally:
        for handle in handles.values():
            handle.close()
    written = 0
    for entity, prefix in prefixes.items():
        entries = []
        for file in range(files):
            key = f"{prefix}{file}-000000.jsonl"
            data = (root / key).read_bytes()
            written += len(data)
            entries.append(file_entry(key, data, file, range(counts[entity, file])))
        (root / manifest_key(entity, day)).write_bytes(drain_manifest(entity, day, entries).to_json())
        (root / success_key(entity, day)).write_bytes(b"")  # after the manifest, as the drain does
    if gate:
        gate_local_day(root, day)
    return written
