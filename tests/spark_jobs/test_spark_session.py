"""Session helpers: the UTC time zone, executor credentials for remote masters, lake URLs, the --date argument."""

from __future__ import annotations

import argparse
from datetime import date

import pytest
from pyspark.sql import SparkSession

from spark_jobs.session import Lake, build_session, executor_credentials_conf, iso_date, lake_argument_parser

ENVIRON = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret", "HOME": "/root"}


def test_local_masters_need_no_executor_credentials() -> None:
    assert executor_credentials_conf("local[*]", ENVIRON) == {}


def test_remote_executors_get_the_credentials_set_in_the_driver() -> None:
    assert executor_credentials_conf("spark://spark-master:7077", ENVIRON) == {
        "spark.executorEnv.AWS_ACCESS_KEY_ID": "id",
        "spark.executorEnv.AWS_SECRET_ACCESS_KEY": "secret",
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
