"""Fetch and build what the stack needs beyond pip: Kafka jars, the MinIO server, the s3a jars, Spark's CDS archive.

Each step is skipped when its pinned version is already in place, so a second install changes nothing.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from devstack import paths, spark_cds, versions
from devstack.log import step
from devstack.processes import StackError

# Pinned, so the goal does not depend on the default of whichever Maven is installed (also in the Dockerfile).
MAVEN_DEPENDENCY_PLUGIN_VERSION = "3.8.1"
MAVEN_DEPENDENCY_PLUGIN = f"org.apache.maven.plugins:maven-dependency-plugin:{MAVEN_DEPENDENCY_PLUGIN_VERSION}"


PREREQUISITES = "see Prerequisites in README.md (Java 17, Maven 3.8+, Go 1.26+)"


def _stamp_ok(stamp: Path, version: str) -> bool:
    return stamp.exists() and stamp.read_text() == version


def missing_tools(tools: Sequence[str]) -> list[str]:
    """Those of ``tools`` not found on PATH."""
    return [tool for tool in tools if shutil.which(tool) is None]


def require_tools(tools: Sequence[str]) -> None:
    """Fail naming each of ``tools`` missing from PATH."""
    if missing := missing_tools(tools):
        raise StackError(f"{', '.join(missing)} not found on PATH; {PREREQUISITES}")


def run_logged(command: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
    """Run ``command`` with its output in ``log``; fail in one line naming the command and the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        try:
            done = subprocess.run(list(command), stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
        except FileNotFoundError:
            raise StackError(f"{command[0]} not found on PATH; {PREREQUISITES}") from None
    if done.returncode != 0:
        raise StackError(f"`{shlex.join(command)}` failed with exit code {done.returncode}; its output: {log}")


def _maven_copy(pom_dir: Path, dest: Path, props: dict[str, str]) -> None:
    """Resolve a pom's runtime dependencies from Maven Central into ``dest``."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    defines = [f"-D{k}={v}" for k, v in props.items()]
    run_logged(
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
        paths.LOGS / f"maven-{pom_dir.name}.log",
    )
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def _kafka_installed() -> bool:
    return _stamp_ok(paths.KAFKA_LIBS / ".version", versions.KAFKA_VERSION)


def _minio_installed() -> bool:
    return paths.MINIO_BIN.exists() and _stamp_ok(paths.MINIO_BIN.with_name(".version"), versions.MINIO_VERSION)


def _s3a_jars_fetched() -> bool:
    return _stamp_ok(paths.S3A_JARS / ".version", versions.HADOOP_VERSION)


def needed_tools() -> list[str]:
    """The tools this install runs: java always (Kafka, Spark), mvn and go only for what is still to fetch or build."""
    return [
        "java",
        *(["mvn"] if not (_kafka_installed() and _s3a_jars_fetched()) else []),
        *(["go"] if not _minio_installed() else []),
    ]


def install_kafka() -> None:
    if _kafka_installed():
        return
    step(f"fetching Kafka {versions.KAFKA_VERSION} jars from Maven Central")
    _maven_copy(paths.MAVEN_DIR / "kafka", paths.KAFKA_LIBS, {"kafka.version": versions.KAFKA_VERSION})
    (paths.KAFKA_LIBS / ".version").write_text(versions.KAFKA_VERSION)


def install_minio() -> None:
    if _minio_installed():
        return
    step(f"building MinIO {versions.MINIO_VERSION} with go install (first time: ~3 min)")
    paths.MINIO_BIN.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(paths.MINIO_BIN.parent), "CGO_ENABLED": "0"}
    command = ["go", "install", f"{versions.MINIO_MODULE}@{versions.MINIO_VERSION}"]
    run_logged(command, paths.LOGS / "go-install-minio.log", env)
    paths.MINIO_BIN.with_name(".version").write_text(versions.MINIO_VERSION)


def install_s3a_jars() -> None:
    """Fetch hadoop-aws + AWS SDK and link them into pyspark's jars so every Spark sees s3a://."""
    if not _s3a_jars_fetched():
        step(f"fetching hadoop-aws {versions.HADOOP_VERSION} and the AWS SDK bundle from Maven Central")
        _maven_copy(paths.MAVEN_DIR / "s3a", paths.S3A_JARS, {"hadoop.version": versions.HADOOP_VERSION})
        (paths.S3A_JARS / ".version").write_text(versions.HADOOP_VERSION)
    link_jars(paths.S3A_JARS, paths.pyspark_jars_dir())


def link_jars(source: Path, target: Path) -> None:
    """Link every jar of ``source`` into ``target``, and remove the links into ``source`` of jars it no longer holds
    (an earlier hadoop-aws version's: left dangling, they broke the class-data fingerprint and Spark's class path)."""
    current = {jar.name for jar in source.glob("*.jar")}
    for link in target.glob("*.jar"):
        if link.is_symlink() and Path(os.readlink(link)).parent == source and link.name not in current:
            link.unlink()
    for name in sorted(current):
        link = target / name
        if link.is_symlink() and not link.exists():
            link.unlink()  # dangling: its jar was fetched again
        if not link.exists():
            link.symlink_to(source / name)


def install_all() -> None:
    require_tools(needed_tools())
    for d in (paths.PIDS, paths.LOGS, paths.AIRFLOW_HOME, paths.KAFKA_DATA.parent, paths.MINIO_DATA):
        d.mkdir(parents=True, exist_ok=True)
    install_kafka()
    install_s3a_jars()
    install_minio()
    spark_cds.train_archive()  # after the jars: the archive fits one class path
