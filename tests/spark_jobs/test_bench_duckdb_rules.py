"""The benchmark's DuckDB cleaning macros give what Spark's cleaning functions give, on the edge forms of each
rule (the benchmark compares the two engines only on generated data, which holds few of them)."""

from __future__ import annotations

import duckdb
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from benchmarks.bench_spark import duckdb_cleaning_macros
from spark_jobs.cleaning import canonical_uuid, follower_count_number

FOLLOWER_TEXTS = [
    "0", "437", "6k", "124k", "1M", "2.5M", "1.2345k", "0.0000015M", " 35k ", "12k\u00a0", "\u3000437\u202f",
    "\v1M", "\t", "", "k", "1kk", "-5", "12 followers", "User Info Error", "99999999999999999999M", "437\u2028",
    "437\u0085", "437\u200b", "\u2003 12k\u2009", "1" + " " * 1_000 + "x", "19.99999999", "1.99999999999k",
    "1.9999999999999999999", "0012.5k", "9223372036854775807", "9223372036854775808", "9223372036854775.8079k",
    "9223372036854775.808k", None,
]  # fmt: skip
UUID = "6f1c2b4e-8a3d-4c5e-9f10-1234567890ab"
UUID_SPELLINGS = [UUID, UUID.upper(), "{" + UUID + "}", UUID.replace("-", ""), "urn:uuid:" + UUID]


def duckdb_values(macro: str, texts: list[str | None]) -> list[object]:
    con = duckdb.connect()
    duckdb_cleaning_macros(con)
    con.execute("CREATE TABLE t (n INTEGER, x VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(texts)))
    return [value for (value,) in con.execute(f"SELECT {macro}(x) FROM t ORDER BY n").fetchall()]


def spark_values(spark: SparkSession, function: object, texts: list[str | None]) -> list[object]:
    frame = spark.createDataFrame(list(enumerate(texts)), "n int, x string")
    return [row.v for row in frame.orderBy("n").select(function(F.col("x")).alias("v")).collect()]  # type: ignore[operator]


def test_follower_counts_agree_with_spark(spark: SparkSession) -> None:
    assert duckdb_values("followers", FOLLOWER_TEXTS) == spark_values(spark, follower_count_number, FOLLOWER_TEXTS)


def test_uuid_spellings_agree_with_spark(spark: SparkSession) -> None:
    assert duckdb_values("uuid_text", UUID_SPELLINGS) == spark_values(spark, canonical_uuid, UUID_SPELLINGS)
    assert set(duckdb_values("uuid_text", UUID_SPELLINGS)) == {UUID}
