"""Exit codes of the lake jobs: a refusal of the lake's data and bad arguments are told apart from the rest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from include.drain.errors import LockLostError
from include.job_exits import DATA_EXIT_CODE, USAGE_EXIT_CODE
from spark_jobs.failures import RefusedDataError, refusal_summary, refuses_data, run_job
from spark_jobs.manifest import UngatedDataError
from spark_jobs.session import lake_argument_parser


def fail_with(error: Exception):
    def main(argv) -> None:
        raise error

    return main


def test_a_refusal_of_the_data_exits_with_the_data_code(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        run_job(fail_with(RefusedDataError("manifest of raw/pin/dt=2026-11-24/ is not JSON")), [])
    assert exited.value.code == DATA_EXIT_CODE == 65
    assert "manifest of raw/pin/dt=2026-11-24/ is not JSON" in caplog.text


def test_any_other_failure_is_raised_as_it_is() -> None:
    with pytest.raises(OSError, match="connection reset"):
        run_job(fail_with(OSError("connection reset")), [])


def test_a_job_that_succeeds_returns() -> None:
    seen = []
    run_job(seen.append, ["--date", "2026-11-24"])
    assert seen == [["--date", "2026-11-24"]]


def test_bad_arguments_exit_with_the_usage_code(capsys: pytest.CaptureFixture) -> None:
    parser = lake_argument_parser("test")
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--date", "2026-02-30", "--bucket", "lake"])
    assert exited.value.code == USAGE_EXIT_CODE == 64
    assert "--date must be YYYY-MM-DD, got '2026-02-30'" in capsys.readouterr().err


@pytest.mark.parametrize("wait", ["-1", "nan", "inf", "an hour"])
def test_a_lease_wait_that_is_not_a_number_of_seconds_is_a_usage_error(wait: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        lake_argument_parser("test").parse_args(["--date", "2026-11-24", "--bucket", "lake", "--lease-wait", wait])
    assert exited.value.code == USAGE_EXIT_CODE
    assert f"--lease-wait must be a number of seconds, 0 or more, got '{wait}'" in capsys.readouterr().err


@pytest.mark.parametrize("attempt", ["0", "-2", "first"])
def test_an_attempt_that_is_no_try_number_is_a_usage_error_before_any_work(attempt: str, capsys) -> None:
    # the publication's attempt is 1 or more: a 0 failed after the whole computation, and was retried
    with pytest.raises(SystemExit) as exited:
        lake_argument_parser("test").parse_args(["--date", "2026-11-24", "--bucket", "lake", "--attempt", attempt])
    assert exited.value.code == USAGE_EXIT_CODE
    assert f"--attempt must be an Airflow try number, 1 or more, got '{attempt}'" in capsys.readouterr().err


def test_the_summary_of_a_java_error_is_its_refusing_line() -> None:
    text = (
        "An error occurred while calling o37.parquet.\n"
        ": org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT] Encountered error while reading file x\n"
        "\tat org.apache.spark.Foo(Foo.scala:1)\n"
        "Caused by: org.apache.spark.SparkException: [MALFORMED_RECORD_IN_PARSING.WITHOUT_SUGGESTION] Malformed "
        "records are detected in record parsing: [null,y].\n"
    )
    assert refusal_summary(Exception(text)).startswith("Caused by: org.apache.spark.SparkException: [MALFORMED_RECORD")
    assert refusal_summary(Exception(text)).endswith("parsing: [null,y]. (reading x)")
    assert refusal_summary(RefusedDataError("one line")) == "one line"


def test_the_summary_names_the_file_spark_was_reading() -> None:
    url = "s3a://lake/raw/pin/dt=2026-11-24/part-0.jsonl.gz"
    text = (
        f": org.apache.spark.SparkException: [FAILED_READ_FILE.NO_HINT] Encountered error while reading file {url}.  "
        "SQLSTATE: KD001\n\tat org.apache.spark.Foo(Foo.scala:1)\n"
        "Caused by: org.apache.spark.SparkException: [MALFORMED_RECORD_IN_PARSING.WITHOUT_SUGGESTION] Malformed\n"
    )
    assert refusal_summary(Exception(text)) == (
        "Caused by: org.apache.spark.SparkException: [MALFORMED_RECORD_IN_PARSING.WITHOUT_SUGGESTION] Malformed "
        f"(reading {url})"
    )


def test_a_lost_lease_is_retried_and_a_day_the_gate_has_not_passed_is_not() -> None:
    assert not refuses_data(LockLostError("lost the lease on s3://lake/_locks/clean-pin/dt=2026-11-24/lease"))
    assert refuses_data(UngatedDataError("not cleaning pin of 2026-11-24: it has no quality report (_dq.json)"))


def test_the_spark_jobs_import_no_kafka_client() -> None:
    """A driver whose Python is not the Airflow worker's needs no Kafka library to read the gate's report."""
    imports = "import sys, spark_jobs.clean, spark_jobs.analytics; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", imports], capture_output=True, text=True, check=True).stdout
    assert "'spark_jobs.clean'" in loaded
    assert "confluent_kafka" not in loaded and "'include.drain.engine'" not in loaded
