"""`make bench` keeps working and keeps its checks: a tiny-scale run of every benchmark writes a figure table after
verifying every drain's output and comparing the engines' tables; the checks themselves raise on bad input.
No speed is asserted."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from benchmarks import bench_drain, bench_history, bench_spark
from benchmarks.__main__ import BENCHES, main, result_files
from include.emulator.local_lake import write_raw_day
from include.lake import dq_key, manifest_key, partition_prefix
from spark_jobs.manifest import gate_refusal, parse_manifest


def _spy(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[tuple[Any, ...]]:
    """Record the arguments of every call of ``module.name``, which still runs."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(module, name)

    @functools.wraps(real)
    def recorded(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(module, name, recorded)
    return calls


def test_every_benchmark_runs_at_small_scale_and_checks_its_output(stack_env, tmp_path, monkeypatch, capsys):
    verified = _spy(monkeypatch, bench_drain, "verify_drain")
    gates_checked = _spy(monkeypatch, bench_drain, "check_gate_output")
    clean_compared = _spy(monkeypatch, bench_spark, "check_same_parquet")
    results_compared = _spy(monkeypatch, bench_spark, "check_same_rows")
    history_checked = _spy(monkeypatch, bench_history, "check_history_read")
    out = tmp_path / "bench.json"

    main(["--scale", "0.0001", "--out", str(out)])

    report = json.loads(out.read_text())
    figures = report["results"]
    assert {f["bench"] for f in figures} == set(BENCHES)
    assert all(math.isfinite(f["value"]) and f["unit"] for f in figures)
    assert "bench" in capsys.readouterr().out.splitlines()[-len(figures) - 3]  # the table's header line
    assert {"code", "versions", "machine", "load_average"} <= report.keys()
    # every drain (two 1x, the 4x, the 1x again before the 4x) checked against the records produced
    count = next(f["value"] for f in figures if f["name"] == "records in the 1x day")
    assert sorted((day, expected) for _, _, day, _, expected in verified) == sorted(
        [(bench_drain.DAY_1X, count)] * 3 + [(bench_drain.DAY_4X, 4 * count)]
    )
    # every gate (two of the 1x day, one of the 4x day) passed and counted the records produced
    assert sorted(expected for _, expected in gates_checked) == [count, count, 4 * count]
    assert sorted(call[1] for call in clean_compared) == ["clean geo", "clean pin", "clean user"]
    assert sorted(call[0] for call in results_compared) == sorted(bench_spark.DUCKDB_ANALYTICS)
    # each timed analytics run read every day up to its own
    assert [(day, len(days), days[0]) for _, day, days in history_checked] == [
        (bench_history.FIRST_DAY + timedelta(days=n - 1), n, bench_history.FIRST_DAY) for n in bench_history.CHECKPOINTS
    ]


# --- the engines' comparison ------------------------------------------------------------------------


def test_result_tables_that_differ_raise():
    spark = pa.table({"country": ["Chile", "Kenya"], "category_count": [3, 4]})
    bench_spark.check_same_rows("same rows, other order", pa.table({"country": ["Kenya", "Chile"],
                                                                     "category_count": [4, 3]}), spark)  # fmt: skip
    with pytest.raises(bench_spark.EnginesDisagree, match="only in DuckDB"):
        bench_spark.check_same_rows("t", pa.table({"country": ["Chile", "Kenya"], "category_count": [3, 5]}), spark)
    with pytest.raises(bench_spark.EnginesDisagree, match="columns"):
        bench_spark.check_same_rows("t", pa.table({"country": ["Chile", "Kenya"], "count": [3, 4]}), spark)


def test_result_tables_are_compared_with_duplicates():
    spark = pa.table({"post_year": [2020, 2020, 2021]})
    with pytest.raises(bench_spark.EnginesDisagree, match="1 only in Spark"):
        bench_spark.check_same_rows("t", pa.table({"post_year": [2020, 2021]}), spark)


def _parquet(path: Path, rows: str) -> str:
    duckdb.sql(f"COPY (SELECT * FROM (VALUES {rows}) AS t(ind, country)) TO '{path}' (FORMAT parquet)")
    return str(path)


def test_clean_tables_that_differ_raise(tmp_path):
    spark = _parquet(tmp_path / "spark.parquet", "(1, 'Chile'), (2, 'Kenya'), (2, 'Kenya')")
    con = duckdb.connect()
    same = _parquet(tmp_path / "same.parquet", "(2, 'Kenya'), (1, 'Chile'), (2, 'Kenya')")
    assert bench_spark.check_same_parquet(con, "clean", ["ind", "country"], same, spark) == 3
    other_value = _parquet(tmp_path / "other.parquet", "(1, 'Chile'), (2, 'Kenya'), (2, 'Iceland')")
    with pytest.raises(bench_spark.EnginesDisagree, match=r"1 rows only in DuckDB's.*1 rows only in Spark's"):
        bench_spark.check_same_parquet(con, "clean", ["ind", "country"], other_value, spark)
    one_copy = _parquet(tmp_path / "one_copy.parquet", "(1, 'Chile'), (2, 'Kenya')")
    with pytest.raises(bench_spark.EnginesDisagree, match="row counts"):
        bench_spark.check_same_parquet(con, "clean", ["ind", "country"], one_copy, spark)


def test_reposts_differ_from_the_copies_before_them(tmp_path):
    day = date(2024, 6, 1)
    write_raw_day(tmp_path, day, 2000)
    assert bench_spark.revise_reposts(tmp_path, day) > 0
    for entity, field in (("pin", "follower_count"), ("geo", "country"), ("user", "age")):
        manifest = json.loads((tmp_path / manifest_key(entity, day)).read_text())
        values: dict[str, list[object]] = {}
        for entry in manifest["files"]:
            data = (tmp_path / entry["key"]).read_bytes()
            assert entry["bytes"] == len(data)
            for line in data.splitlines():
                raw = json.loads(line)
                values.setdefault(raw["key"], []).append(raw["value"][field])
        copies = [v for v in values.values() if len(v) > 1]
        assert copies, entity
        assert all(v[-1] != v[0] for v in copies), entity  # keeping the earliest would show


def test_the_benchmark_day_is_passed_by_the_quality_gate_as_revised(tmp_path):
    day = date(2024, 6, 1)

    assert bench_spark.write_bench_day(tmp_path, day, 2000) > 0

    for entity in ("pin", "geo", "user"):
        text = (tmp_path / manifest_key(entity, day)).read_text()
        manifest = json.loads(text)
        for entry in manifest["files"]:  # the revised objects
            data = (tmp_path / entry["key"]).read_bytes()
            assert (entry["bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert [p["bytes"] for p in manifest["partitions"]] == [f["bytes"] for f in manifest["files"]]
        report = json.loads((tmp_path / dq_key(entity, day)).read_text())
        assert report["passed"] and report["manifest_sha256"] == hashlib.sha256(text.encode()).hexdigest()
        assert report["metrics"]["record_count"] == 2000
        # what the clean job asks before it cleans the day
        assert gate_refusal(json.dumps(report), parse_manifest(text, partition_prefix("raw", entity, day))) is None


# --- the drain's output check ------------------------------------------------------------------------


def _manifest(record_count: int, counts: list[int]) -> dict[str, Any]:
    files = [{"key": f"raw/pin/dt=2024-06-01/{n}.jsonl", "count": c, "bytes": 100 * c} for n, c in enumerate(counts)]
    return {"run_id": "bench-1", "status": "complete", "record_count": record_count, "files": files}


def _sizes(manifest: dict[str, Any]) -> dict[str, int | None]:
    return {f["key"]: f["bytes"] for f in manifest["files"]}


DRAINED = {"run_id": "bench-1", "outcome": "drained"}


def test_a_drain_that_wrote_the_day_passes():
    manifest = _manifest(30, [10, 20])
    bench_drain.check_drain_output(DRAINED, manifest, 30, _sizes(manifest))


@pytest.mark.parametrize(
    ("run", "manifest", "match"),
    [
        (DRAINED, _manifest(29, [10, 20]), "record count is 29, not 30"),
        (DRAINED, _manifest(30, [10, 19]), "sum of its files' counts is 29"),
        ({**DRAINED, "outcome": "kept_existing"}, _manifest(30, [10, 20]), "outcome"),
        ({**DRAINED, "run_id": "bench-2"}, _manifest(30, [10, 20]), "run id"),
    ],
)
def test_a_drain_whose_manifest_does_not_match_raises(run, manifest, match):
    with pytest.raises(bench_drain.DrainOutputError, match=match):
        bench_drain.check_drain_output(run, manifest, 30, _sizes(manifest))


def test_a_gate_that_failed_or_miscounted_raises():
    bench_drain.check_gate_output({"passed": True, "records": 30}, 30)
    with pytest.raises(bench_drain.DrainOutputError, match="the gate failed 30 records, expected 30 passed"):
        bench_drain.check_gate_output({"passed": False, "records": 30}, 30)
    with pytest.raises(bench_drain.DrainOutputError, match="the gate passed 29 records, expected 30 passed"):
        bench_drain.check_gate_output({"passed": True, "records": 29}, 30)


def test_a_drain_whose_objects_do_not_match_the_manifest_raises():
    manifest = _manifest(30, [10, 20])
    first, second = (f["key"] for f in manifest["files"])
    with pytest.raises(bench_drain.DrainOutputError, match=f"{second} is 1999 bytes"):
        bench_drain.check_drain_output(DRAINED, manifest, 30, {first: 1000, second: 1999})
    with pytest.raises(bench_drain.DrainOutputError, match=f"{first} is None bytes"):
        bench_drain.check_drain_output(DRAINED, manifest, 30, {first: None, second: 2000})


# --- where the figures go ------------------------------------------------------------------------------


def test_only_a_full_run_replaces_latest_json():
    started = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert [p.name for p in result_files(list(BENCHES), 1.0, started)] == [
        "latest.json",
        "20261126T120000Z-api-drain-spark-history-scale1.json",
    ]
    assert result_files(["spark", "api"], 1.0, started)[0].name == "latest-api-spark.json"
    assert result_files(list(BENCHES), 0.1, started)[0].name == "latest-api-drain-spark-history-scale0.1.json"
