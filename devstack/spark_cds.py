"""A JVM class-data archive (AppCDS) for the spark-submit driver: Spark's classes load pre-parsed.

Every Spark job pays a JVM start that loads and verifies ~20,000 classes; on the 2-core machine
that is ~7 s of a job's wall time. The archive is trained once, here, by running the real
cleaning and analytics jobs on a small local day with ``-XX:ArchiveClassesAtExit``; jobs then
start with ``-XX:SharedArchiveFile`` (``plugins.lake_spark.class_data_conf``), about 2.5 s sooner.

An archive only fits the JVM and class path it was made with, so it is rebuilt when Java,
pyspark or the jars change (a fingerprint is kept beside it). A stale archive is harmless: the JVM
ignores it (``-Xshare:auto``). The class path must hold no non-empty folder, so these jobs run
without ``SPARK_CONF_DIR`` (nor another Spark's ``SPARK_HOME``). The archive is only a speed-up: when
training fails, install warns and the jobs run without it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from devstack import paths
from devstack.environment import without_foreign_tools
from devstack.log import step

TRAINING_DAY = date(2024, 1, 1)
TRAINING_TRIPLES = 2_000
_TRAINING_JOB = """\
import sys
from spark_jobs import analytics, clean
clean.main(sys.argv[1:])
analytics.main(sys.argv[1:])
"""


def fingerprint() -> str:
    """What the archive depends on: the java binary and version, pyspark's version and its jars with the size and
    modification time the JVM checks (a reinstalled pyspark has the same jars with new times)."""
    import pyspark

    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=True).stderr
    jars = sorted(f"{p.name} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in paths.pyspark_jars_dir().glob("*.jar"))
    text = "\n".join([java, pyspark.__version__, *jars])
    return hashlib.sha256(text.encode()).hexdigest()


def submit_env() -> dict[str, str]:
    """Environment of a local spark-submit: the venv's pyspark, this interpreter as the driver, the repo importable."""
    return without_foreign_tools(os.environ) | {
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": str(paths.REPO),
        "PATH": f"{paths.VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def train_archive() -> None:
    """(Re)build the archive unless the one in place matches this Java, pyspark and jar set; warn if training fails."""
    from include.emulator.local_lake import write_raw_day

    stamp = paths.SPARK_CDS_ARCHIVE.with_suffix(".fingerprint")
    wanted = fingerprint()
    if paths.SPARK_CDS_ARCHIVE.exists() and stamp.exists() and stamp.read_text() == wanted:
        return
    step("training the JVM class-data archive for spark-submit on a small day (first time: ~1 min)")
    paths.SPARK_CDS_ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    partial = paths.SPARK_CDS_ARCHIVE.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    log = paths.LOGS / "spark-cds-training.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="spark-cds-") as folder, log.open("w") as out:
        lake = Path(folder) / "lake"
        write_raw_day(lake, TRAINING_DAY, TRAINING_TRIPLES)
        job = Path(folder) / "train.py"
        job.write_text(_TRAINING_JOB)
        command = [
            str(paths.VENV_BIN / "spark-submit"),
            "--master", "local[*]",
            "--conf", f"spark.driver.extraJavaOptions=-XX:ArchiveClassesAtExit={partial}",
            "--conf", "spark.log.level=ERROR",
            str(job),
            "--date", TRAINING_DAY.isoformat(), "--bucket", "training", "--lake-root", lake.as_uri(),
        ]  # fmt: skip
        done = subprocess.run(command, env=submit_env(), stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        step(
            f"warning: training the class-data archive failed (spark-submit exited with {done.returncode}; output in "
            f"{log}): Spark jobs run without it, each starting about 2.5 s later"
        )
        return
    partial.rename(paths.SPARK_CDS_ARCHIVE)
    stamp.write_text(wanted)
    step(f"class-data archive ready: {paths.SPARK_CDS_ARCHIVE} ({paths.SPARK_CDS_ARCHIVE.stat().st_size >> 20} MiB)")
