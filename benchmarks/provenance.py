"""What a result file needs to be traced: the code, the versions, the machine and its load."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pyspark", "duckdb", "confluent-kafka", "kafka-python")


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)


def _proc_field(path: str, name: str) -> str:
    """The first ``name: value`` line of a /proc file, its value."""
    for line in Path(path).read_text().splitlines():
        if line.split(":")[0].strip() == name:
            return line.split(":", 1)[1].strip()
    return ""


def code() -> dict[str, object]:
    """The git commit measured and whether the tree differed from it (changed or untracked files); None outside git."""
    try:
        commit, status = _run("git", "rev-parse", "HEAD").stdout, _run("git", "status", "--porcelain").stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit.strip(), "dirty": bool(status.strip())}


def versions() -> dict[str, str]:
    """The Python packages whose speed is measured, the JVM on the PATH (Kafka's and Spark's), Kafka's pin."""
    from devstack.versions import KAFKA_VERSION

    java = _run("java", "-version").stderr.strip().splitlines()
    return {**{name: version(name) for name in PACKAGES}, "java": "; ".join(java), "kafka": KAFKA_VERSION,
            "python": platform.python_version()}  # fmt: skip


def machine() -> dict[str, object]:
    """CPUs (count, the ones this process may use, model) and memory."""
    return {
        "cpus": os.cpu_count(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "mem_total": _proc_field("/proc/meminfo", "MemTotal"),
        "kernel": platform.release(),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(load, 2) for load in os.getloadavg()]
