"""The cleaning job end to end on a local lake: manifest-driven reads, one partition overwritten, reruns."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from include.emulator.local_lake import write_raw_day
from include.lake import partition_prefix, success_key
from spark_jobs import clean
from spark_jobs.failures import refuses_data
from spark_jobs.manifest import BadManifestError, ManifestError, parse_manifest

WriteRaw = Callable[..., list[str]]
DAY = date(2026, 11, 24)
T0 = int(datetime.combine(DAY, time(), UTC).timestamp() * 1000)  # the start of DAY in epoch ms


def kafka_line(value: dict[str, Any], *, offset: int, timestamp_ms: int, partition: int = 0) -> dict[str, Any]:
    """One raw line as the drain writes it: the Kafka coordinates next to the record."""
    key = value.get("unique_id", value.get("ind"))
    return {"partition": partition, "offset": offset, "timestamp": timestamp_ms, "key": str(key), "value": value}


def pin(index: int, title: str) -> dict[str, object]:
    return {
        "index": index,
        "unique_id": f"00000000-0000-0000-0000-{index:012d}",
        "title": title,
        "description": "d",
        "follower_count": "3k",
        "tag_list": "t",
        "is_image_or_video": "image",
        "image_src": "https://i.pinimg.com/x.jpg",
        "downloaded": 1,
        "save_location": "Local save in /data/art",
        "category": "art",
    }


def run_clean(lake: Path, day: date, *entities: str) -> None:
    argv = ["--date", day.isoformat(), "--bucket", "unused", "--lake-root", lake.as_uri()]
    clean.main([*argv, "--entity", *entities] if entities else argv)


def read_clean(spark: SparkSession, lake: Path, entity: str, day: date):
    return spark.read.parquet(str(lake / partition_prefix("clean", entity, day)))


def test_reads_exactly_the_manifest_files_plain_and_gzipped(spark: SparkSession, tmp_path: Path, write_raw: WriteRaw):
    first = [kafka_line(pin(1, "one"), offset=0, timestamp_ms=T0), kafka_line(pin(2, "two"), offset=1, timestamp_ms=T0)]
    second = [
        kafka_line(pin(1, "one again"), offset=2, timestamp_ms=T0 + 1),
        kafka_line(pin(3, "x"), offset=3, timestamp_ms=T0),
    ]
    write_raw("pin", DAY, [first, second], gzipped=[False, True])
    stray = tmp_path / partition_prefix("raw", "pin", DAY) / "not-in-manifest.jsonl"
    stray.write_text(json.dumps(kafka_line(pin(9, "stray"), offset=9, timestamp_ms=T0)) + "\n")

    run_clean(tmp_path, DAY, "pin")

    actual = read_clean(spark, tmp_path, "pin", DAY).select("ind", "title", "follower_count", "save_location")
    expected = [(1, "one again", 3000, "/data/art"), (2, "two", 3000, "/data/art"), (3, "x", 3000, "/data/art")]
    assertDataFrameEqual(actual, spark.createDataFrame(expected, actual.schema))


def test_rerun_gives_the_same_output_and_touches_no_other_partition(
    spark: SparkSession, tmp_path: Path, write_raw: WriteRaw
):
    write_raw("pin", DAY, [[kafka_line(pin(i, f"t{i}"), offset=i, timestamp_ms=T0 + i) for i in range(20)]])
    other_day = tmp_path / partition_prefix("clean", "pin", date(2026, 11, 23))
    other_day.mkdir(parents=True)
    (other_day / "part-00000.parquet").write_bytes(b"an earlier day's output")

    run_clean(tmp_path, DAY, "pin")
    first_run = read_clean(spark, tmp_path, "pin", DAY).collect()
    run_clean(tmp_path, DAY, "pin")
    second_run = read_clean(spark, tmp_path, "pin", DAY)

    assertDataFrameEqual(second_run, first_run)
    assert second_run.count() == 20
    assert (other_day / "part-00000.parquet").read_bytes() == b"an earlier day's output"


def test_all_entities_by_default(spark: SparkSession, tmp_path: Path, write_raw: WriteRaw):
    geo = {"ind": 1, "timestamp": "2020-01-02 03:04:05", "latitude": 1.5, "longitude": 2.5, "country": "Chad"}
    user = {"ind": 1, "first_name": "A", "last_name": "B", "age": 30, "date_joined": "2019-03-04T05:06:07"}
    write_raw("pin", DAY, [[kafka_line(pin(1, "p"), offset=0, timestamp_ms=T0)]])
    write_raw("geo", DAY, [[kafka_line(geo, offset=0, timestamp_ms=T0)]])
    write_raw("user", DAY, [[kafka_line(user, offset=0, timestamp_ms=T0)]])

    run_clean(tmp_path, DAY)

    assert read_clean(spark, tmp_path, "pin", DAY).select("ind").collect() == [(1,)]
    assert read_clean(spark, tmp_path, "geo", DAY).select("coordinates", "timestamp").collect() == [
        ([1.5, 2.5], datetime(2020, 1, 2, 3, 4, 5))
    ]
    assert read_clean(spark, tmp_path, "user", DAY).select("user_name").collect() == [("A B",)]


def test_a_day_written_by_the_emulator_lake_is_committed_and_cleans(spark: SparkSession, tmp_path: Path):
    write_raw_day(tmp_path, DAY, 40, files=2, pool_size=10, repost_percent=20.0)
    keys = {
        entity: {json.loads(text)["key"] for path in (tmp_path / partition_prefix("raw", entity, DAY)).glob("*.jsonl")
                 for text in path.read_text().splitlines()}
        for entity in ("pin", "geo", "user")
    }  # fmt: skip

    run_clean(tmp_path, DAY)

    key_column = {"pin": "unique_id", "geo": "ind", "user": "ind"}  # DESIGN.md §3: the Kafka key of each entity
    for entity, written in keys.items():
        assert (tmp_path / success_key(entity, DAY)).is_file()
        cleaned = read_clean(spark, tmp_path, entity, DAY).select(key_column[entity]).collect()
        assert {str(row[0]) for row in cleaned} == written


def test_empty_file_list_gives_an_empty_partition_with_the_clean_schema(
    spark: SparkSession, tmp_path: Path, write_raw: WriteRaw
):
    write_raw("pin", DAY, [[kafka_line(pin(1, "p"), offset=0, timestamp_ms=T0)]])
    write_raw("pin", date(2026, 11, 25), [])
    run_clean(tmp_path, DAY, "pin")

    run_clean(tmp_path, date(2026, 11, 25), "pin")

    empty = read_clean(spark, tmp_path, "pin", date(2026, 11, 25))
    assert empty.count() == 0
    assert empty.schema == read_clean(spark, tmp_path, "pin", DAY).schema


def test_missing_manifest_is_a_clear_error(tmp_path: Path, write_raw: WriteRaw):
    write_raw("pin", DAY, [[kafka_line(pin(1, "p"), offset=0, timestamp_ms=T0)]], manifest=False)

    with pytest.raises(ManifestError, match=r"no manifest at .*raw/pin/dt=2026-11-24/_manifest\.json.*drain") as raised:
        run_clean(tmp_path, DAY, "pin")
    assert not refuses_data(raised.value), "a drain may still commit the day: a retry can help"
    assert not (tmp_path / partition_prefix("clean", "pin", DAY)).exists()


def test_partition_without_success_marker_is_refused(tmp_path: Path, write_raw: WriteRaw):
    write_raw("pin", DAY, [[kafka_line(pin(1, "p"), offset=0, timestamp_ms=T0)]], success=False)

    not_finished = r"no _SUCCESS at .*raw/pin/dt=2026-11-24/.*drain has not finished"
    with pytest.raises(ManifestError, match=not_finished) as raised:
        run_clean(tmp_path, DAY, "pin")
    assert not refuses_data(raised.value)
    assert not (tmp_path / partition_prefix("clean", "pin", DAY)).exists()


@pytest.mark.parametrize(
    ("entity", "bad_line"),
    [
        ("pin", {"partition": 3, "offset": 7, "timestamp": T0, "key": "x"}),  # no value at all
        ("pin", kafka_line({k: v for k, v in pin(2, "p").items() if k != "unique_id"}, offset=7, timestamp_ms=T0)),
        ("user", {"partition": 3, "offset": 7, "timestamp": T0, "key": "1", "value": None}),
        ("geo", kafka_line({"country": "Chad", "latitude": 1.0, "longitude": 2.0}, offset=7, timestamp_ms=T0)),
    ],
)
def test_line_without_a_record_or_its_key_fails_the_job_naming_it(
    tmp_path: Path, write_raw: WriteRaw, entity: str, bad_line: dict[str, Any]
):
    good = {"pin": pin(1, "p"), "geo": {"ind": 1, "country": "Chad"}, "user": {"ind": 1, "first_name": "A"}}[entity]
    (key,) = write_raw(entity, DAY, [[kafka_line(good, offset=6, timestamp_ms=T0), bad_line]])

    with pytest.raises(Exception, match=rf"{key}.*offset 7") as raised:
        run_clean(tmp_path, DAY, entity)
    assert refuses_data(raised.value), "the raw files never change: no retry"


def test_malformed_raw_line_fails_the_job(tmp_path: Path, write_raw: WriteRaw):
    (key,) = write_raw("pin", DAY, [[kafka_line(pin(1, "p"), offset=0, timestamp_ms=T0)]])
    (tmp_path / key).write_text('{"partition": 0, "offset": 0, "timestamp": "not a number"\n')

    with pytest.raises(Exception, match=r"(?i)malformed") as raised:
        run_clean(tmp_path, DAY, "pin")
    assert refuses_data(raised.value), "the raw files never change: no retry"


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"status": "done", "files": []}', "status 'done'"),
        ('{"status": "complete"}', "no list of file objects"),
        ('{"status": "complete", "files": [{"key": "raw/pin/dt=2026-11-23/a.jsonl"}]}', "not a file of the partition"),
        ('{"status": "complete", "files": [{"key": "raw/pin/dt=2026-11-24/"}]}', "not a file of the partition"),
    ],
)
def test_bad_manifests_are_rejected_with_the_reason(manifest: str, message: str):
    with pytest.raises(BadManifestError, match=message) as raised:
        parse_manifest(manifest, "raw/pin/dt=2026-11-24/")
    assert refuses_data(raised.value)


def test_manifest_keys_in_their_order():
    text = json.dumps(
        {"status": "partial", "files": [{"key": "raw/geo/dt=2026-11-24/b.jsonl"}, {"key": "raw/geo/dt=2026-11-24/a"}]}
    )

    manifest = parse_manifest(text, "raw/geo/dt=2026-11-24/")

    assert (manifest.status, manifest.keys) == ("partial", ("raw/geo/dt=2026-11-24/b.jsonl", "raw/geo/dt=2026-11-24/a"))
