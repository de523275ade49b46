"""Spark cleaning + analytics on ``local[*]`` against DuckDB doing the same work on the same raw files.

Writes ``1,000,000 * scale`` pin/geo/user triples (3 % re-posted, messy values as in the real
data, both timestamp formats) as raw JSON Lines with manifests on local disk, then:

- Spark: ``spark-submit`` of ``spark_jobs/clean.py`` then ``spark_jobs/analytics.py``, exactly as
  the operator submits them (JVM start included), plus an empty job to measure JVM + session start;
- DuckDB: the same cleaning rules and the same results, in SQL, in this process, written to Parquet.

Peak memory is the highest RSS sampled over the spark-submit process tree (JVM + Python driver),
and over this process for DuckDB. The two engines' analytics are compared row by row.

Run on its own: ``python -m benchmarks.bench_spark [scale]``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psutil

from benchmarks.results import Result
from benchmarks.stack import stack_env
from devstack.spark_cds import submit_env
from include.emulator.local_lake import write_raw_day
from spark_jobs.cleaning import BLANK_CHARACTERS, PLACEHOLDERS

BENCH = "spark"
DAY = date(2024, 6, 1)
FULL = 1_000_000
DRIVER_MEMORY = "2g"
REPO_ROOT = Path(__file__).resolve().parents[1]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"


# --- measuring ------------------------------------------------------------------------------------


@contextmanager
def peak_rss(pids: Callable[[], list[int]]) -> Iterator[list[float]]:
    """Sample the summed RSS of ``pids()`` every 50 ms; the list holds the peak in MiB when the block ends."""
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total = 0
            for pid in pids():
                try:
                    total += psutil.Process(pid).memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            peak[0] = max(peak[0], total / 2**20)
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def spark_submit(application: Path, args: list[str], py_files: Path, conf: dict[str, str]) -> tuple[float, float]:
    """Run one job with spark-submit on local[*]; returns (wall seconds, peak RSS MiB of the process tree)."""
    settings = [
        arg for key, value in {"spark.log.level": "WARN", **conf}.items() for arg in ("--conf", f"{key}={value}")
    ]
    command = [str(SPARK_SUBMIT), "--master", "local[*]", "--driver-memory", DRIVER_MEMORY, *settings,
               "--py-files", str(py_files), str(application), *args]  # fmt: skip
    env = submit_env()  # without SPARK_CONF_DIR, which would void the class-data archive
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def tree() -> list[int]:
        try:
            return [process.pid, *(c.pid for c in psutil.Process(process.pid).children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    with peak_rss(tree) as peak:
        _, errors = process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode:
        raise RuntimeError(f"{application.name} failed ({process.returncode}):\n{errors[-4000:]}")
    return elapsed, peak[0]


# --- DuckDB: the same cleaning and analytics ------------------------------------------------------


def _value_struct(entity: str) -> str:
    from spark_jobs.schemas import record_schema

    types = {"bigint": "BIGINT", "double": "DOUBLE", "string": "VARCHAR"}
    fields = ", ".join(f'"{f.name}" {types[f.dataType.simpleString()]}' for f in record_schema(entity).fields)
    return f"STRUCT({fields})"


def duckdb_clean_sql(entity: str, files: list[str]) -> str:
    """The cleaning rules of DESIGN.md §5 for one entity, as one DuckDB query over the manifest's files."""
    key = "unique_id" if entity == "pin" else "ind"
    line_types = {"partition": "BIGINT", "offset": "BIGINT", "timestamp": "BIGINT", "key": "VARCHAR"}
    columns = "{" + ", ".join(f"'{n}': '{t}'" for n, t in (*line_types.items(), ("value", _value_struct(entity)))) + "}"
    raw = f"""SELECT "partition" AS kafka_partition, "offset" AS kafka_offset, "timestamp" AS kafka_ms, value
              FROM read_json({files!r}, format='newline_delimited', columns={columns})"""
    latest = f"""SELECT value.*, epoch_ms(kafka_ms) AS ingested_at, kafka_partition, kafka_offset FROM ({raw})
                 QUALIFY row_number() OVER (PARTITION BY value.{key} ORDER BY kafka_ms DESC, kafka_offset DESC) = 1"""
    ingest = "ingested_at, kafka_partition, kafka_offset"
    if entity == "pin":
        return f"""SELECT "index" AS ind, unique_id, txt(title) AS title, txt(description) AS description,
                   txt(poster_name) AS poster_name, followers(txt(follower_count)) AS follower_count,
                   txt(tag_list) AS tag_list, txt(is_image_or_video) AS is_image_or_video,
                   txt(image_src) AS image_src, downloaded::INTEGER AS downloaded,
                   txt(regexp_replace(save_location, '^Local save in ', '')) AS save_location,
                   txt(category) AS category, {ingest} FROM ({latest})"""
    if entity == "geo":
        return f"""SELECT ind, blank(country) AS country, [latitude, longitude] AS coordinates,
                   TRY_CAST("timestamp" AS TIMESTAMPTZ) AS "timestamp", {ingest} FROM ({latest})"""
    return f"""SELECT ind, nullif(concat_ws(' ', blank(first_name), blank(last_name)), '') AS user_name,
               age::INTEGER AS age, TRY_CAST(date_joined AS TIMESTAMPTZ) AS date_joined, {ingest} FROM ({latest})"""


_AGE_GROUP = """CASE WHEN age BETWEEN 18 AND 24 THEN '18-24' WHEN age BETWEEN 25 AND 35 THEN '25-35'
                WHEN age BETWEEN 36 AND 50 THEN '36-50' WHEN age > 50 THEN '+50' END"""


def _most_popular(source: str, group: str) -> str:
    counts = f"SELECT {group}, category, count(*) AS category_count FROM {source} GROUP BY {group}, category"
    return f"""SELECT * FROM ({counts}) QUALIFY row_number() OVER
               (PARTITION BY {group} ORDER BY category_count DESC, category ASC NULLS LAST) = 1"""


DUCKDB_ANALYTICS = {
    "popular_category_by_country": _most_popular("pins_geo", "country"),
    "popular_category_by_year": _most_popular('(SELECT *, year("timestamp") AS post_year FROM pins_geo)', "post_year"),
    "top_poster_by_country": """SELECT country, poster_name, follower_count FROM pins_geo QUALIFY row_number() OVER
        (PARTITION BY country ORDER BY follower_count DESC NULLS LAST, poster_name ASC NULLS LAST) = 1""",
    "top_country_by_follower_count": """SELECT country, follower_count FROM top_poster_by_country
        WHERE country IS NOT NULL ORDER BY follower_count DESC NULLS LAST, country LIMIT 1""",
    "popular_category_by_age_group": _most_popular("pins_users WHERE age_group IS NOT NULL", "age_group"),
    "median_followers_by_age_group": """SELECT age_group, median(follower_count)::DOUBLE AS median_follower_count
        FROM pins_users WHERE age_group IS NOT NULL GROUP BY 1""",
    "users_joined_by_year": """SELECT year(date_joined) AS post_year, count(*) AS number_users_joined
        FROM clean_user GROUP BY 1""",
    "median_followers_by_join_year": """SELECT post_year, median(follower_count)::DOUBLE AS median_follower_count
        FROM pins_users GROUP BY 1""",
    "median_followers_by_age_group_and_join_year": """SELECT age_group, post_year,
        median(follower_count)::DOUBLE AS median_follower_count FROM pins_users WHERE age_group IS NOT NULL
        GROUP BY 1, 2""",
}


def duckdb_pipeline(root: Path, out: Path) -> dict[str, list[tuple]]:
    """Clean the day and compute the results with DuckDB, writing Parquet like the Spark jobs; returns the results."""
    import duckdb

    from include.lake import manifest_key

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    placeholders = ", ".join("'" + p.replace("'", "''") + "'" for p in PLACEHOLDERS)
    # blank: empty, or only blank characters; the first character decides quickly for most values
    con.execute(f"""CREATE MACRO is_blank(x) AS
        x = '' OR (strpos('{BLANK_CHARACTERS}', x[1]) > 0 AND trim(x, '{BLANK_CHARACTERS}') = '')""")
    con.execute("CREATE MACRO blank(x) AS CASE WHEN is_blank(x) THEN NULL ELSE x END")
    con.execute(f"CREATE MACRO txt(x) AS CASE WHEN is_blank(x) OR x IN ({placeholders}) THEN NULL ELSE x END")
    # As in Spark: multiply the exact decimal, then truncate ("1.2345k" -> 1234); too large -> null.
    con.execute(r"""CREATE MACRO followers(x) AS CASE WHEN regexp_full_match(x, '\s*\d+(\.\d+)?\s*[kKmM]?\s*') THEN
        try(TRY_CAST(trunc(TRY_CAST(regexp_extract(x, '\d+(\.\d+)?') AS DECIMAL(38, 18))
                 * CASE lower(regexp_extract(x, '[kKmM]')) WHEN 'k' THEN 1000 WHEN 'm' THEN 1000000 ELSE 1 END)
             AS BIGINT)) END""")
    for entity in ("pin", "geo", "user"):
        manifest = json.loads((root / manifest_key(entity, DAY)).read_text())
        files = [str(root / entry["key"]) for entry in manifest["files"]]
        con.execute(f"CREATE TABLE clean_{entity} AS {duckdb_clean_sql(entity, files)}")
        target = out / "clean" / entity / f"dt={DAY}"
        target.mkdir(parents=True)
        con.execute(f"COPY clean_{entity} TO '{target}/part-0.parquet' (FORMAT parquet)")
    con.execute("""CREATE TABLE pins_geo AS SELECT p.*, g.country, g."timestamp"
                   FROM clean_pin p JOIN clean_geo g USING (ind)""")
    con.execute(f"""CREATE TABLE pins_users AS SELECT p.*, u.age, u.date_joined, {_AGE_GROUP} AS age_group,
                    year(u.date_joined) AS post_year FROM clean_pin p JOIN clean_user u USING (ind)""")
    results = {}
    for name, query in DUCKDB_ANALYTICS.items():
        con.execute(f"CREATE TABLE {name} AS {query}")
        target = out / "analytics" / name / f"dt={DAY}"
        target.mkdir(parents=True)
        con.execute(f"COPY {name} TO '{target}/part-0.parquet' (FORMAT parquet)")
        results[name] = con.execute(f"SELECT * FROM {name}").fetchall()
    con.close()
    return results


def _normalised(rows: list[tuple]) -> set[tuple]:
    return {tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows}


def spark_results(root: Path) -> dict[str, list[tuple]]:
    import pyarrow.parquet as pq

    from include.lake import partition_prefix

    return {
        name: [tuple(r.values()) for r in pq.read_table(root / partition_prefix("analytics", name, DAY)).to_pylist()]
        for name in DUCKDB_ANALYTICS
    }


# --- the benchmark --------------------------------------------------------------------------------


def run(scale: float = 1.0) -> list[Result]:
    from plugins.lake_spark import SHIPPED_PACKAGES, class_data_conf, zip_packages

    triples = max(1_000, math.ceil(FULL * scale))
    label = f"{triples:,} triples"
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as folder:
        root = Path(folder) / "lake"
        started = time.perf_counter()
        raw_bytes = write_raw_day(root, DAY, triples)
        generated = time.perf_counter() - started
        py_files = zip_packages(REPO_ROOT, SHIPPED_PACKAGES, Path(folder) / "packages.zip")
        empty_job = Path(folder) / "start_only.py"
        empty_job.write_text("from spark_jobs.session import build_session\nbuild_session('start').range(1).count()\n")
        job_args = ["--date", DAY.isoformat(), "--bucket", "bench", "--lake-root", root.as_uri()]

        cds = class_data_conf(stack_env())  # as the operator submits them
        # the start with and without the archive alternate twice and keep their best: the machine is shared
        with_archive, without_archive = [], []
        for _ in range(2):
            with_archive.append(spark_submit(empty_job, [], py_files, cds))
            without_archive.append(spark_submit(empty_job, [], py_files, {}))
        start_s, start_peak = min(with_archive)
        cold_start_s = min(without_archive)[0]
        clean_s, clean_peak = spark_submit(REPO_ROOT / "spark_jobs" / "clean.py", job_args, py_files, cds)
        analytics_s, analytics_peak = spark_submit(REPO_ROOT / "spark_jobs" / "analytics.py", job_args, py_files, cds)
        spark_s = clean_s + analytics_s

        me = os.getpid()
        with peak_rss(lambda: [me]) as duck_peak:
            started = time.perf_counter()
            duck = duckdb_pipeline(root, Path(folder) / "duckdb")
            duck_s = time.perf_counter() - started
        spark = spark_results(root)
        differing = sorted(name for name in duck if _normalised(duck[name]) != _normalised(spark[name]))

    cds_note = f"{cold_start_s:.1f}s without the CDS archive" if cds else "NO CDS archive (run devstack install)"
    agreement = "the 9 result tables agree" if not differing else f"DIFFER: {', '.join(differing)}"
    ratio = spark_s / duck_s
    return [
        Result(BENCH, f"raw input ({label})", raw_bytes / 2**20, "MiB", f"JSONL, generated in {generated:.0f}s"),
        Result(BENCH, "spark clean (spark-submit)", clean_s, "s", "JVM start + read JSON + dedup + write Parquet"),
        Result(BENCH, "spark analytics (spark-submit)", analytics_s, "s", "JVM start + 9 result tables"),
        Result(BENCH, "spark clean + analytics", spark_s, "s", f"local[*], driver {DRIVER_MEMORY}"),
        Result(BENCH, "spark JVM + session start (empty job)", start_s, "s", f"per spark-submit; {cds_note}"),
        Result(BENCH, "spark peak RSS", max(clean_peak, analytics_peak), "MiB", "spark-submit tree: JVM + driver"),
        Result(BENCH, "duckdb clean + analytics", duck_s, "s", "same raw files, same rules, Parquet out"),
        Result(BENCH, "duckdb peak RSS", duck_peak[0], "MiB", "this process"),
        Result(BENCH, "spark / duckdb wall time", ratio, "x", f"goal <= 3x; {agreement}"),
        Result(
            BENCH,
            "spark / duckdb without JVM starts",
            (spark_s - 2 * start_s) / duck_s,
            "x",
            "two spark-submits minus two empty-job starts",
        ),
        Result(BENCH, "spark empty-job peak RSS", start_peak, "MiB", "baseline of a JVM with a session"),
    ]


if __name__ == "__main__":
    for result in run(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0):
        print(f"{result.name:45} {result.value:12,.2f} {result.unit:4} {result.note}")
