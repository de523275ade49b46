"""How the daily analytics grow with the lake's history: the job of day N reads every clean day up to N.

Writes ``HISTORY_DAYS`` consecutive raw days of ``1,000,000 * scale`` pin/geo/user triples each on local disk, every
day with keys of its own (3 % re-posted within the day), has the quality gate pass each, and cleans each with its own
``spark-submit`` of ``spark_jobs/clean.py``. Then ``spark_jobs/analytics.py`` runs, as the DAG submits it (1g of
driver memory, the class-data archive), as of the first day and as of each later day in ``CHECKPOINTS``: with 1,
2, 4 and 8 days of history it reads 1, 2, 4 and 8 times the rows. Each run is checked: its publication names every
day it had to read, and ``users_joined_by_year`` counts every user once, as many as the raw days hold distinct keys
(counted by DuckDB from the raw files).

The baseline is the one-day run of the same process; the figures are each run's wall time and the JVM's peak RSS,
their ratios to the baseline, and the cost of each further million triples of history (the slope of a least-squares
line through the runs, which one noisy run moves less than a difference of two).

Run on its own: ``python -m benchmarks --only history [--scale S]``.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from benchmarks.bench_spark import REPO_ROOT, SparkRun, spark_submit
from benchmarks.results import Result
from benchmarks.stack import stack_env
from include.emulator.local_lake import write_raw_day
from include.lake import partition_prefix, publication_key
from include.records import ENTITIES

BENCH = "history"
FIRST_DAY = date(2024, 7, 1)
FULL = 1_000_000
CHECKPOINTS = (1, 2, 4, 8)  # days of history each timed analytics run reads
HISTORY_DAYS = CHECKPOINTS[-1]
DRIVER_MEMORY = "1g"  # as the DAG's spark tasks (dags/pinterest_daily.py)


class HistoryNotRead(AssertionError):
    """An analytics run did not read the history it was given."""


def distinct_users(root: Path, days: list[date]) -> int:
    """Distinct user keys in the raw files of ``days`` (what the analytics must count once each)."""
    files = [str(root / partition_prefix("raw", "user", d) / "*.jsonl") for d in days]
    listed = ", ".join(f"'{f}'" for f in files)
    query = f"SELECT count(DISTINCT key) FROM read_ndjson([{listed}], columns = {{'key': 'VARCHAR'}})"
    with duckdb.connect() as con:
        return con.execute(query).fetchone()[0]


def check_history_read(root: Path, day: date, days: list[date]) -> int:
    """Raise unless the analytics of ``day`` read every one of ``days`` and counted each distinct user once."""
    inputs = json.loads((root / publication_key(day)).read_text())["inputs"]
    read = {entity: sorted(inputs.get(entity, {})) for entity in ENTITIES}
    expected = [d.isoformat() for d in days]
    if any(found != expected for found in read.values()):
        raise HistoryNotRead(f"the analytics of {day} read {read}, expected the days {expected[0]}..{expected[-1]}")
    joined = pq.read_table(root / partition_prefix("analytics", "users_joined_by_year", day))
    counted = sum(joined.column("number_users_joined").to_pylist())
    users = distinct_users(root, days)
    if counted != users:
        raise HistoryNotRead(f"the analytics of {day} counted {counted:,} users; the raw days hold {users:,}")
    return users


def run(scale: float = 1.0) -> list[Result]:
    from plugins.lake_spark import SHIPPED_PACKAGES, class_data_conf, zip_packages

    triples = max(1_000, math.ceil(FULL * scale))
    days = [FIRST_DAY + timedelta(days=n) for n in range(HISTORY_DAYS)]
    with tempfile.TemporaryDirectory(prefix="bench-history-") as folder:
        root = Path(folder) / "lake"
        py_files = zip_packages(REPO_ROOT, SHIPPED_PACKAGES, Path(folder) / "packages.zip")
        conf = class_data_conf(stack_env())
        started = time.perf_counter()
        for n, day in enumerate(days):
            print(f"    writing raw day {n + 1}/{len(days)} ({day}, {triples:,} triples)", flush=True)
            write_raw_day(root, day, triples, first_ind=n * triples)
        generated = time.perf_counter() - started
        raw_bytes = sum(path.stat().st_size for path in (root / "raw").rglob("*.jsonl"))
        clean_s = []
        for n, day in enumerate(days, 1):
            print(f"    cleaning day {n}/{len(days)} ({day})", flush=True)
            clean_s.append(_submit("clean.py", root, day, py_files, conf).seconds)
        runs: dict[int, SparkRun] = {}
        users: dict[int, int] = {}
        for n in CHECKPOINTS:
            day = days[n - 1]
            print(f"    analytics as of {day}: {n} day(s) of history", flush=True)
            runs[n] = _submit("analytics.py", root, day, py_files, conf, "--first-day", FIRST_DAY.isoformat())
            users[n] = check_history_read(root, day, days[:n])

    base = runs[1]
    fit = statistics.linear_regression([n * triples / 1e6 for n in runs], [r.seconds for r in runs.values()])
    results = [
        Result(BENCH, f"raw history ({HISTORY_DAYS} days of {triples:,} triples)", raw_bytes / 2**20, "MiB",
               f"JSONL, generated in {generated:.0f}s"),
        Result(BENCH, "spark clean of one day (median)", sorted(clean_s)[len(clean_s) // 2], "s",
               f"{len(clean_s)} spark-submits, {min(clean_s):.1f}-{max(clean_s):.1f}s"),
    ]  # fmt: skip
    for n, spark_run in runs.items():
        results += [
            Result(BENCH, f"analytics with {n} day(s) of history", spark_run.seconds, "s",
                   f"{spark_run.seconds / base.seconds:.2f}x the 1-day run; {users[n]:,} users counted once, checked"),
            Result(BENCH, f"analytics JVM peak RSS, {n} day(s)", spark_run.jvm_peak_mib, "MiB",
                   f"{spark_run.jvm_peak_mib / base.jvm_peak_mib:.2f}x the 1-day run; driver {DRIVER_MEMORY}"),
        ]  # fmt: skip
    results.append(
        Result(BENCH, "analytics time per further million triples of history", fit.slope, "s",
               f"least-squares line through the {len(runs)} runs; {fit.intercept:.1f}s with no history (start, setup)")
    )  # fmt: skip
    return results


def _submit(job: str, root: Path, day: date, py_files: Path, conf: dict[str, str], *extra: str) -> SparkRun:
    args = ["--date", day.isoformat(), "--bucket", "bench", "--lake-root", root.as_uri(), *extra]
    return spark_submit(REPO_ROOT / "spark_jobs" / job, args, py_files, conf, DRIVER_MEMORY)
