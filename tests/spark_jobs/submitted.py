"""Run a small PySpark job with spark-submit, in a JVM of its own, and read back what it printed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devstack import paths
from devstack.spark_cds import submit_env


def printed_by_submitted_job(tmp_path: Path, job: str, marker: str, *options: str, job_args: Sequence[str] = ()) -> Any:
    """spark-submit the source ``job`` with ``options`` and the stack's Spark environment; the JSON it printed on the
    first stdout line starting with ``marker`` and a space. Fails with the end of stderr if the job failed."""
    source = tmp_path / "submitted_job.py"
    source.write_text(job)
    done = subprocess.run([str(paths.VENV_BIN / "spark-submit"), *options, str(source), *job_args], env=submit_env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    printed = [line for line in done.stdout.splitlines() if line.startswith(f"{marker} ")]
    assert done.returncode == 0 and printed, done.stderr[-3000:]
    return json.loads(printed[0].removeprefix(f"{marker} "))
