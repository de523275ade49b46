"""Session helpers: the UTC time zone, lake URLs, the job arguments."""

from __future__ import annotations

import argparse
from datetime import date

import pytest
from pyspark.sql import SparkSession

from spark_jobs.session import Lake, build_session, iso_date, lake_argument_parser


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
