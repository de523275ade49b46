"""Under CI a skipped test fails the run, and an empty parametrize list fails its collection (tests/no_skips.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devstack import paths

SKIPS = """
import pytest

def test_runs():
    pass

def test_skips():
    pytest.skip("no broker here")

@pytest.mark.xfail(reason="known")
def test_expected_to_fail():
    assert False
"""
EMPTY_PARAMETERS = """
import pytest

@pytest.mark.parametrize("entity", [])
def test_each(entity):
    pass
"""


def _pytest(tmp_path: Path, source: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_probe.py"
    test_file.write_text(source)
    env = {key: value for key, value in os.environ.items() if key != "CI"} | ({"CI": ci} if ci else {})
    command = [sys.executable, "-m", "pytest", "-c", str(paths.REPO / "pyproject.toml"), "-p", "tests.no_skips",
               "-p", "no:cacheprovider", "-q", str(test_file)]  # fmt: skip
    return subprocess.run(command, cwd=paths.REPO, env=env, capture_output=True, text=True, timeout=120)


def test_a_skip_fails_under_ci_and_names_its_reason(tmp_path: Path) -> None:
    done = _pytest(tmp_path, SKIPS, "true")
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed, 1 xfailed" in done.stdout
    assert "skipped under CI, where every test must run: Skipped: no broker here" in done.stdout


def test_a_skip_is_a_skip_outside_ci(tmp_path: Path) -> None:
    done = _pytest(tmp_path, SKIPS, None)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 1 skipped, 1 xfailed" in done.stdout


def test_an_empty_parameter_list_fails_collection(tmp_path: Path) -> None:
    done = _pytest(tmp_path, EMPTY_PARAMETERS, None)
    assert done.returncode == 2, done.stdout  # interrupted: errors during collection
    assert "Empty parameter set" in done.stdout
