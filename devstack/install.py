"""Fetch and build what the stack needs beyond pip: Kafka jars, the MinIO server, the s3a jars, Spark's CDS archive.

Each step is skipped when its pinned version is already in place, so a second install changes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devstack import paths, spark_cds, versions
from devstack.log import step

# Pinned, so the goal does not depend on the default of whichever Maven is installed (also in the Dockerfile).
MAVEN_DEPENDENCY_PLUGIN_VERSION = "3.8.1"
MAVEN_DEPENDENCY_PLUGIN = f"org.apache.maven.plugins:maven-dependency-plugin:{MAVEN_DEPENDENCY_PLUGIN_VERSION}"


def _stamp_ok(stamp: Path, version: str) -> bool:
    return stamp.exists() and stamp.read_text() == version


def _maven_copy(pom_dir: Path, dest: Path, props: dict[str, str]) -> None:
    """Resolve a pom's runtime dependencies from Maven Central into ``dest``."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    defines = [f"-D{k}={v}" for k, v in props.items()]
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom_dir / "pom.xml"),
            f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
            *defines,
        ],
        check=True,
    )
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def install_kafka() -> None:
    stamp = paths.KAFKA_LIBS / ".version"
    if _stamp_ok(stamp, versions.KAFKA_VERSION):
        return
    step(f"fetching Kafka {versions.KAFKA_VERSION} jars from Maven Central")
    _maven_copy(paths.MAVEN_DIR / "kafka", paths.KAFKA_LIBS, {"kafka.version": versions.KAFKA_VERSION})
    stamp.write_text(versions.KAFKA_VERSION)


def install_minio() -> None:
    stamp = paths.MINIO_BIN.with_name(".version")
    if paths.MINIO_BIN.exists() and _stamp_ok(stamp, versions.MINIO_VERSION):
        return
    step(f"building MinIO {versions.MINIO_VERSION} with go install (first time: ~3 min)")
    paths.MINIO_BIN.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(paths.MINIO_BIN.parent), "CGO_ENABLED": "0"}
    subprocess.run(["go", "install", f"{versions.MINIO_MODULE}@{versions.MINIO_VERSION}"], check=True, env=env)
    stamp.write_text(versions.MINIO_VERSION)


def install_s3a_jars() -> None:
    """Fetch hadoop-aws + AWS SDK and link them into pyspark's jars so every Spark sees s3a://."""
    stamp = paths.S3A_JARS / ".version"
    if not _stamp_ok(stamp, versions.HADOOP_VERSION):
        step(f"fetching hadoop-aws {versions.HADOOP_VERSION} and the AWS SDK bundle from Maven Central")
        _maven_copy(paths.MAVEN_DIR / "s3a", paths.S3A_JARS, {"hadoop.version": versions.HADOOP_VERSION})
        stamp.write_text(versions.HADOOP_VERSION)
    target = paths.pyspark_jars_dir()
    for jar in sorted(paths.S3A_JARS.glob("*.jar")):
        link = target / jar.name
        if not link.exists():
            link.symlink_to(jar)


def install_all() -> None:
    for d in (paths.PIDS, paths.LOGS, paths.AIRFLOW_HOME, paths.KAFKA_DATA.parent, paths.MINIO_DATA):
        d.mkdir(parents=True, exist_ok=True)
    install_kafka()
    install_s3a_jars()
    install_minio()
    spark_cds.train_archive()  # after the jars: the archive fits one class path
