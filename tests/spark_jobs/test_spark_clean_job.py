"""The cleaning job end to end on a local lake: manifest-driven reads, one partition overwritten, reruns, and only
days whose manifest the quality gate passed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import Observation, SparkSession
from pyspark.testing import assertDataFrameEqual

from include.drain.errors import QualityGateError
from include.drain.quality import QualityThresholds
from include.emulator.local_lake import gate_local_day, write_raw_day
from include.lake import dq_key, manifest_key, partition_prefix, success_key
from spark_jobs import clean
from spark_jobs.failures import refuses_data
from spark_jobs.manifest import (
    BadManifestError,
    ChangedRawDataError,
    ManifestError,
    UngatedDataError,
    gate_refusal,
    parse_manifest,
)
from tests.spark_jobs.lake_days import WriteRaw

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


def overwrite_keeping_its_size(path: Path, lines: list[dict[str, Any]]) -> None:
    """Replace a raw object after the gate passed it, padded with blanks to its size in the manifest: such a change
    gets past the clean job's size check, to the checks that read the lines."""
    text = "".join(json.dumps(line) + "\n" for line in lines)
    size = path.stat().st_size
    assert len(text) <= size, "the object to replace must be at least as long"
    path.write_text(text[:-1] + " " * (size - len(text)) + "\n")


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


def raw_values(lake: Path, entity: str, day: date) -> dict[str, dict[str, Any]]:
    """The record of each key in the raw partition (a re-post of the emulator's lake repeats its record)."""
    lines = [json.loads(text) for path in (lake / partition_prefix("raw", entity, day)).glob("*.jsonl")
             for text in path.read_text().splitlines()]  # fmt: skip
    return {line["key"]: line["value"] for line in lines}


def utc_naive(text: str) -> datetime:
    """The moment of a generated timestamp text (plain or ISO-8601) as a naive UTC datetime; no offset means UTC."""
    moment = datetime.fromisoformat(text)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def test_a_day_written_by_the_emulator_lake_is_committed_and_cleans(spark: SparkSession, tmp_path: Path):
    write_raw_day(tmp_path, DAY, 40, files=2, pool_size=10, repost_percent=20.0)
    values = {entity: raw_values(tmp_path, entity, DAY) for entity in ("pin", "geo", "user")}
    keys = {entity: set(by_key) for entity, by_key in values.items()}

    run_clean(tmp_path, DAY)

    key_column = {"pin": "unique_id", "geo": "ind", "user": "ind"}  # DESIGN.md §3: the Kafka key of each entity
    for entity, written in keys.items():
        assert (tmp_path / success_key(entity, DAY)).is_file()
        report = json.loads((tmp_path / dq_key(entity, DAY)).read_text())  # the gate's, as the DAG leaves it
        assert report["passed"] and report["metrics"]["record_count"] == 40
        assert report["metrics"]["distinct_keys"] == len(written) < 40  # re-posts
        assert (
            report["manifest_sha256"] == hashlib.sha256((tmp_path / manifest_key(entity, DAY)).read_bytes()).hexdigest()
        )
        cleaned = read_clean(spark, tmp_path, entity, DAY).select(key_column[entity]).collect()
        assert {str(row[0]) for row in cleaned} == written
    for entity, field in (("geo", "timestamp"), ("user", "date_joined")):  # both text forms, each the same moment
        texts = {int(key): value[field] for key, value in values[entity].items()}
        assert {text[10] for text in texts.values()} == {" ", "T"}
        cleaned = dict(read_clean(spark, tmp_path, entity, DAY).select("ind", field).collect())
        assert cleaned == {ind: utc_naive(text) for ind, text in texts.items()}


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
    long = {
        "pin": pin(2, "p" * 400),
        "geo": {"ind": 2, "country": "C" * 400},
        "user": {"ind": 2, "first_name": "A" * 400},
    }
    (key,) = write_raw(
        entity,
        DAY,
        [[kafka_line(good, offset=6, timestamp_ms=T0), kafka_line(long[entity], offset=7, timestamp_ms=T0)]],
    )
    # the gate refuses some of these lines: written after it passed the day (the job does not re-read checksums)
    overwrite_keeping_its_size(tmp_path / key, [kafka_line(good, offset=6, timestamp_ms=T0), bad_line])

    with pytest.raises(Exception, match=rf"{key}.*offset 7") as raised:
        run_clean(tmp_path, DAY, entity)
    assert refuses_data(raised.value), "the raw files never change: no retry"


def test_malformed_raw_line_fails_the_job(tmp_path: Path, write_raw: WriteRaw):
    (key,) = write_raw("pin", DAY, [[kafka_line(pin(1, "p"), offset=0, timestamp_ms=T0)]])
    malformed, size = '{"partition": 0, "offset": 0, "timestamp": "not a number"', (tmp_path / key).stat().st_size
    (tmp_path / key).write_text(malformed + " " * (size - len(malformed) - 1) + "\n")  # the size the manifest gives

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
        ('{"status": "complete", "files": [{"key": "raw/pin/dt=2026-11-24/x/a"}]}', "not a file of the partition"),
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


# --- the quality gate's verdict -------------------------------------------------------------------------------------


def pins_day(write_raw: WriteRaw, count: int = 3, **options: Any) -> list[str]:
    return write_raw("pin", DAY, [[kafka_line(pin(i, f"t{i}"), offset=i, timestamp_ms=T0 + i) for i in range(count)]],
                     **options)  # fmt: skip


def redrain(lake: Path, entity: str, day: date, **changes: Any) -> str:
    """What a rerun of the drain commits without the gate after it: a new manifest (other run metadata); its text."""
    path = lake / manifest_key(entity, day)
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}, indent=2))
    return path.read_text()


def test_a_day_without_a_quality_report_is_refused_until_the_gate_checks_it(spark: SparkSession, tmp_path: Path,
                                                                           write_raw: WriteRaw):  # fmt: skip
    pins_day(write_raw, gate=False)  # drained outside the DAG, so its gate never ran

    with pytest.raises(UngatedDataError) as raised:
        run_clean(tmp_path, DAY, "pin")

    message = str(raised.value)
    assert "not cleaning pin of 2026-11-24" in message and "it has no quality report (_dq.json)" in message
    assert "clear the drain task of that day's run together with its downstream tasks" in message
    assert refuses_data(raised.value), "the gate ran before the clean job: a retry reads the same report"
    assert not (tmp_path / partition_prefix("clean", "pin", DAY)).exists()

    gate_local_day(tmp_path, DAY, ["pin"])  # what clearing the gate (or the drain with its downstream tasks) does
    run_clean(tmp_path, DAY, "pin")
    assert sorted(row.ind for row in read_clean(spark, tmp_path, "pin", DAY).collect()) == [0, 1, 2]


def test_a_day_the_gate_failed_is_refused_naming_the_failures(tmp_path: Path, write_raw: WriteRaw):
    pins_day(write_raw, gate=False)
    with pytest.raises(QualityGateError):
        gate_local_day(tmp_path, DAY, ["pin"], QualityThresholds(min_records=4))

    with pytest.raises(
        UngatedDataError, match=r"the quality gate failed it \(record_count 3 < min_records 4\)"
    ) as raised:
        run_clean(tmp_path, DAY, "pin")
    assert refuses_data(raised.value)
    assert not (tmp_path / partition_prefix("clean", "pin", DAY)).exists()


def test_a_day_another_run_drained_again_after_the_gate_is_retried_until_that_runs_gate_passed_it(
    spark: SparkSession, tmp_path: Path, write_raw: WriteRaw
):
    """A second run of the day (a backfill next to the scheduled run) drains it between this run's gate and its clean
    job: that run's gate comes next, so this job's retry, not a refusal, ends with the day cleaned."""
    pins_day(write_raw)
    redrain(tmp_path, "pin", DAY, run_id="rerun", drained_at="2026-11-26T06:00:00Z")

    with pytest.raises(clean.DrainedAgainError) as raised:
        run_clean(tmp_path, DAY, "pin")

    assert str(raised.value) == (
        f"not cleaning pin of {DAY} ({tmp_path.as_uri()}/{partition_prefix('raw', 'pin', DAY)}) yet: the quality "
        "gate checked the manifest of drain run 'local-lake', which drain run 'rerun' has replaced since; a retry "
        "cleans the day once that run's gate has passed it"
    )
    assert not refuses_data(raised.value)  # exit code 1: Airflow retries it
    assert not (tmp_path / partition_prefix("clean", "pin", DAY)).exists()

    gate_local_day(tmp_path, DAY, ["pin"])  # the other run's gate
    run_clean(tmp_path, DAY, "pin")  # the retry
    assert sorted(row.ind for row in read_clean(spark, tmp_path, "pin", DAY).collect()) == [0, 1, 2]


def test_raw_objects_gone_since_another_run_drained_the_day_again_are_a_retry_not_a_refusal(
    spark: SparkSession, tmp_path: Path, write_raw: WriteRaw
):
    lines = [kafka_line(pin(i, f"t{i}"), offset=i, timestamp_ms=T0 + i) for i in range(3)]
    (key,) = write_raw("pin", DAY, [lines])
    prefix = partition_prefix("raw", "pin", DAY)
    lake = clean.Lake("unused", tmp_path.as_uri())
    read = clean.read_manifest(spark, lake.url(prefix), prefix)  # as the job read it
    (tmp_path / key).unlink()  # what the other drain removes once its own manifest is committed

    with pytest.raises(ChangedRawDataError, match="it is missing, its manifest says"):
        clean.check_raw_sizes(spark, lake, prefix, read)  # no other manifest: changed behind the drain's back
    redrain(tmp_path, "pin", DAY, run_id="rerun", drained_at="2026-11-26T06:00:00Z")
    with pytest.raises(clean.DrainedAgainError, match="drain run 'rerun' drained the day again since; retry"):
        clean.check_raw_sizes(spark, lake, prefix, read)


def test_a_day_drained_again_by_the_same_run_after_the_gate_says_so(tmp_path: Path, write_raw: WriteRaw):
    """Clearing a drain task alone drains the day again under the same run id: only the manifest's bytes differ."""
    pins_day(write_raw)
    redrain(tmp_path, "pin", DAY, run_id="local-lake", drained_at="2026-11-26T06:00:00Z")

    with pytest.raises(UngatedDataError) as raised:
        run_clean(tmp_path, DAY, "pin")

    assert "written by the same run): the day was drained again after the gate" in str(raised.value)


def test_a_partial_day_accepted_as_final_needs_the_gate_again_like_any_new_manifest(
    spark: SparkSession, tmp_path: Path, write_raw: WriteRaw
):
    pins_day(write_raw, status="partial")  # drained while open: the gate checks a partial day as it is
    run_clean(tmp_path, DAY, "pin")
    accepted = {"run_id": "ops", "accepted_at": "2026-11-27T08:00:00Z", "reason": "[0] starts at offset 7"}
    redrain(tmp_path, "pin", DAY, accepted_partial=accepted)  # the drain accepting it keeps the old _dq.json

    with pytest.raises(UngatedDataError, match="checked another manifest"):
        run_clean(tmp_path, DAY, "pin")

    gate_local_day(tmp_path, DAY, ["pin"])  # the accepting run's gate
    run_clean(tmp_path, DAY, "pin")
    assert read_clean(spark, tmp_path, "pin", DAY).count() == 3


def test_only_a_passing_report_of_the_very_manifest_lets_a_day_through(tmp_path: Path, write_raw: WriteRaw):
    pins_day(write_raw)
    text = (tmp_path / manifest_key("pin", DAY)).read_text()
    manifest = parse_manifest(text, partition_prefix("raw", "pin", DAY))
    report = json.loads((tmp_path / dq_key("pin", DAY)).read_text())
    older = {k: v for k, v in report.items() if k != "manifest_sha256"}  # a gate's from before reports named it

    assert gate_refusal(json.dumps(report), manifest) is None
    assert "not a report naming the manifest it checked" in gate_refusal(json.dumps(older), manifest)
    assert "manifest_sha256: Field required" in gate_refusal(json.dumps(older), manifest)
    assert "the quality gate failed it (x)" in gate_refusal(json.dumps({**report, "passed": False, "failures": ["x"]}),
                                                            manifest)  # fmt: skip
    other = {**report, "passed": False, "manifest_sha256": "0" * 64}
    assert "checked another manifest" in gate_refusal(
        json.dumps(other), manifest
    )  # its verdict says nothing of this one
    assert "no quality report" in gate_refusal(None, manifest)


def test_a_raw_object_changed_after_the_gate_is_refused_naming_it_and_both_sizes(tmp_path: Path, write_raw: WriteRaw):
    lines = [kafka_line(pin(i, f"t{i}"), offset=i, timestamp_ms=T0 + i) for i in range(3)]
    (key,) = write_raw("pin", DAY, [lines])
    gated_size = (tmp_path / key).stat().st_size
    (tmp_path / key).write_text("".join(json.dumps(line) + "\n" for line in lines[:2]))  # a line lost since

    with pytest.raises(ChangedRawDataError) as refused:
        run_clean(tmp_path, DAY, "pin")

    now = (tmp_path / key).stat().st_size
    assert f"{key}: it is {now} bytes, its manifest says {gated_size} bytes (changed after the drain)" in str(
        refused.value
    )
    assert refuses_data(refused.value)  # exit 65: a retry reads the same object
    assert not (tmp_path / partition_prefix("clean", "pin", DAY)).exists()  # nothing written


def test_a_raw_object_of_the_same_size_but_other_lines_leaves_the_day_not_cleaned(tmp_path: Path, write_raw: WriteRaw):
    original = [
        kafka_line(pin(1, "x" * 800), offset=0, timestamp_ms=T0),
        kafka_line(pin(2, "b"), offset=1, timestamp_ms=T0),
    ]
    (key,) = write_raw("pin", DAY, [original])
    size = (tmp_path / key).stat().st_size
    overwrite_keeping_its_size(tmp_path / key, [kafka_line(pin(n, "b"), offset=n, timestamp_ms=T0) for n in (1, 2, 3)])
    assert (tmp_path / key).stat().st_size == size

    with pytest.raises(ChangedRawDataError, match="its raw files hold 3 lines, its manifest says 2"):
        run_clean(tmp_path, DAY, "pin")

    folder = tmp_path / partition_prefix("clean", "pin", DAY)
    assert not (folder / "_SUCCESS").exists() and not (folder / "_source.json").exists()  # the analytics skip it


def test_a_line_count_observed_twice_is_counted_again_before_the_day_is_refused(
    spark: SparkSession, tmp_path: Path, write_raw: WriteRaw, monkeypatch: pytest.MonkeyPatch
):
    write_raw("pin", DAY, [[kafka_line(pin(i, f"t{i}"), offset=i, timestamp_ms=T0 + i) for i in range(3)]])

    class Overcounted(Observation):  # what a stage Spark ran again adds to the observed metrics: its tasks count twice
        @property
        def get(self) -> dict[str, Any]:
            observed = super().get
            return {k: 2 * v for k, v in observed.items()} if "lines" in observed else observed

    monkeypatch.setattr(clean, "Observation", Overcounted)
    run_clean(tmp_path, DAY, "pin")  # the files do hold the manifest's 3 lines: cleaned, not refused

    assert read_clean(spark, tmp_path, "pin", DAY).count() == 3
    assert (tmp_path / partition_prefix("clean", "pin", DAY) / "_source.json").exists()
