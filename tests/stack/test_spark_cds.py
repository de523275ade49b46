"""The class-data archive that `devstack install` trains fits this JVM and class path, and jobs are pointed at it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from devstack import paths
from devstack.environment import process_env
from devstack.spark_cds import submit_env
from plugins.lake_spark import class_data_conf

EMPTY_JOB = "from pyspark.sql import SparkSession\nSparkSession.builder.getOrCreate().range(3).count()\n"


def _submit(tmp_path: Path, java_options: str, *extra: str) -> subprocess.CompletedProcess[str]:
    job = tmp_path / "empty.py"
    job.write_text(EMPTY_JOB)
    command = [str(paths.VENV_BIN / "spark-submit"), "--master", "local[1]", *extra,
               "--conf", f"spark.driver.defaultJavaOptions={java_options}", str(job)]  # fmt: skip
    return subprocess.run(command, env=submit_env(), capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_the_trained_archive_maps_into_the_spark_submit_jvm(tmp_path):
    # -Xshare:on makes the JVM refuse to start unless the archive fits this Java and class path
    done = _submit(tmp_path, f"-XX:SharedArchiveFile={paths.SPARK_CDS_ARCHIVE} -Xshare:on")
    assert done.returncode == 0, done.stderr[-3000:]


def test_an_archive_of_another_class_path_is_refused_under_xshare_on(tmp_path):
    # the control: the same check fails when the class path differs from the trained one
    extra_jar = tmp_path / "extra.jar"
    extra_jar.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    done = _submit(tmp_path, f"-XX:SharedArchiveFile={paths.SPARK_CDS_ARCHIVE} -Xshare:on",
                   "--driver-class-path", str(extra_jar))  # fmt: skip
    assert done.returncode != 0
    assert "shared class paths mismatch" in done.stderr


def test_airflow_tasks_submit_with_the_archive():
    conf = class_data_conf(process_env())
    assert conf == {"spark.driver.defaultJavaOptions": f"-XX:SharedArchiveFile={paths.SPARK_CDS_ARCHIVE} -Xshare:auto"}
