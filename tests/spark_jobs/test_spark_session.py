"""Session helpers: spark-submit's settings over the defaults, the UTC time zone, lake URLs, the job arguments."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from spark_jobs.session import DEFAULT_CONF, Lake, build_session, iso_date, lake_argument_parser
from tests.spark_jobs.submitted import printed_by_submitted_job

# A job that only builds its session as the jobs do and prints what it runs with.
PRINTS_ITS_SESSION = """
import json
from spark_jobs.session import build_session

spark = build_session("probe")
conf = {key: spark.conf.get(key) for key in ("spark.sql.shuffle.partitions", "spark.sql.adaptive.enabled")}
print("SESSION " + json.dumps({"master": spark.sparkContext.master, **conf}))
spark.stop()
"""


def _submitted_session(tmp_path: Path, *options: str) -> dict[str, str]:
    return printed_by_submitted_job(tmp_path, PRINTS_ITS_SESSION, "SESSION", *options)


@pytest.mark.slow
def test_spark_submits_master_and_conf_win_over_the_defaults(tmp_path: Path) -> None:
    # as the DAG's tasks submit (the spark_default connection's master) and as a user overrides a setting
    given = _submitted_session(tmp_path, "--master", "local[1]", "--conf", "spark.sql.shuffle.partitions=3")
    assert given == {"master": "local[1]", "spark.sql.shuffle.partitions": "3", "spark.sql.adaptive.enabled": "true"}

    # nothing given: spark-submit's own master, the platform's defaults
    assert _submitted_session(tmp_path) == {
        "master": "local[*]",
        "spark.sql.shuffle.partitions": DEFAULT_CONF["spark.sql.shuffle.partitions"],
        "spark.sql.adaptive.enabled": "true",
    }


def test_lake_urls() -> None:
    assert Lake("lake").url("clean/pin/dt=2026-11-24/") == "s3a://lake/clean/pin/dt=2026-11-24/"
    assert Lake("lake", "file:///tmp/l/").url("clean/pin/") == "file:///tmp/l/clean/pin/"


def test_date_argument() -> None:
    args = lake_argument_parser("x").parse_args(["--date", "2026-11-24", "--bucket", "b"])

    assert (args.date, args.bucket, args.lake_root) == (date(2026, 11, 24), "b", None)
    with pytest.raises(argparse.ArgumentTypeError, match="--date must be YYYY-MM-DD, got '24/11/2026'"):
        iso_date("24/11/2026")


def test_build_session_forces_utc_over_another_time_zone(spark: SparkSession) -> None:
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        session = build_session("tz")

        assert session.conf.get("spark.sql.session.timeZone") == "UTC"
        assert session.sql("SELECT year(TIMESTAMP '2021-01-01 02:00:00Z') AS y").first().y == 2021
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
