"""Days of a local lake for the analytics job's tests: three drained days of pin/geo/user triples, and how the
tests run a job on them and read a result."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from include.lake import partition_prefix

WriteRaw = Callable[..., list[str]]
DAYS = (date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24))
T0 = int(datetime.combine(DAYS[0], time(), UTC).timestamp() * 1000)  # the start of DAYS[0] in epoch ms
NOW = datetime(2026, 11, 26, 6, tzinfo=UTC)


def triple(ind: int, category: str, country: str) -> dict[str, dict[str, Any]]:
    return {
        "pin": {
            "index": ind,
            "unique_id": f"00000000-0000-0000-0000-{ind:012d}",
            "title": "t",
            "description": "d",
            "poster_name": f"p{ind}",
            "follower_count": f"{ind}k",
            "tag_list": "x",
            "is_image_or_video": "image",
            "image_src": "s",
            "downloaded": 1,
            "save_location": "Local save in /data/x",
            "category": category,
        },
        "geo": {"ind": ind, "timestamp": "2020-01-01 00:00:00", "latitude": 1.0, "longitude": 2.0, "country": country},
        "user": {"ind": ind, "first_name": "a", "last_name": "b", "age": 30, "date_joined": "2017-05-06T07:08:09"},
    }


def kafka_key(record: dict[str, Any]) -> str:
    """The Kafka key the API gives a record (DESIGN.md §3): ``unique_id`` for pins, ``ind`` for geo and user."""
    return str(record.get("unique_id", record.get("ind")))


def seed_entity_day(
    write_raw: WriteRaw, entity: str, day_number: int, triples: list[dict[str, dict[str, Any]]]
) -> None:
    lines = [
        {"partition": 0, "offset": i, "timestamp": T0 + day_number * 86_400_000 + i, "key": kafka_key(t[entity]),
         "value": t[entity]}
        for i, t in enumerate(triples)
    ]  # fmt: skip
    write_raw(entity, DAYS[day_number], [lines])


def seed_day(write_raw: WriteRaw, day_number: int, triples: list[dict[str, dict[str, Any]]]) -> None:
    for entity in ("pin", "geo", "user"):
        seed_entity_day(write_raw, entity, day_number, triples)


def run(job: Any, lake: Path, day: date, *args: str) -> None:
    job.main(["--date", day.isoformat(), "--bucket", "unused", "--lake-root", lake.as_uri(), *args])


def read_result(spark: SparkSession, lake: Path, name: str, day: date) -> list[tuple]:
    return sorted(
        tuple(row) for row in spark.read.parquet(str(lake / partition_prefix("analytics", name, day))).collect()
    )
