"""A day of raw partitions written straight to a local folder, as the drain would leave them in S3.

For runs of the Spark jobs without Kafka or S3 (``--lake-root file:///…``): the benchmark and the
JVM class-data archive that ``devstack install`` trains. Each entity gets ``files`` JSON Lines
objects (as if its topic had that many partitions; a key always lands in the same one), a
``_manifest.json`` listing them, and ``_SUCCESS`` last. ``repost_percent`` of the triples re-post an
earlier one, and a third of the geo timestamps are ISO-8601, so every cleaning rule has work to do.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from include.emulator.generate import generate_triples
from include.lake import manifest_key, partition_prefix, success_key
from include.records import ENTITIES, KEY_FIELD


def _pool(size: int) -> list[dict[str, dict[str, Any]]]:
    """``size`` real-looking triples as JSON values; a third of the geo timestamps in ISO-8601."""
    pool = []
    for number, triple in enumerate(generate_triples(seed=7, count=size, repeat_percent=0)):
        values = {e: json.loads(triple.record(e).model_dump_json(exclude_none=True)) for e in ENTITIES}
        if number % 3 == 0:
            values["geo"]["timestamp"] = values["geo"]["timestamp"].replace(" ", "T")
        pool.append(values)
    return pool


def write_raw_day(
    root: Path, day: date, triples: int, *, files: int = 4, pool_size: int = 20_000, repost_percent: float = 3.0
) -> int:
    """Write ``triples`` triples of ``day`` under ``root`` (objects, manifests, ``_SUCCESS``); returns the bytes."""
    pool, rng = _pool(min(pool_size, triples)), random.Random(11)
    start_ms = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
    step_ms = 86_400_000 / triples
    prefixes = {e: partition_prefix("raw", e, day) for e in ENTITIES}
    for prefix in prefixes.values():
        (root / prefix).mkdir(parents=True, exist_ok=True)
    handles = {(e, f): (root / prefixes[e] / f"{f}-000000.jsonl").open("w") for e in prefixes for f in range(files)}
    counts = dict.fromkeys(handles, 0)
    try:
        for i in range(triples):
            ind = rng.randrange(i) if i and rng.random() * 100 < repost_percent else i
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
            count = counts[entity, file]
            entries.append({"key": key, "partition": file, "first_offset": 0, "last_offset": count - 1, "count": count,
                            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip
        (root / manifest_key(entity, day)).write_text(json.dumps({"status": "complete", "files": entries}))
        (root / success_key(entity, day)).write_bytes(b"")  # last, as the drain does
    return written
