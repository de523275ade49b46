"""`make bench` keeps working: a tiny-scale run of every benchmark writes a figure table (no speed is asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from benchmarks.__main__ import BENCHES
from devstack import paths


def test_every_benchmark_runs_at_small_scale(stack_env, tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--scale", "0.0001", "--out", str(out)],
        cwd=paths.REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())["results"]
    assert {f["bench"] for f in figures} == set(BENCHES)
    assert all(math.isfinite(f["value"]) and f["unit"] for f in figures)
    assert "bench" in result.stdout.splitlines()[-len(figures) - 3]  # the table's header line
