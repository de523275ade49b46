"""`python -m api --help` describes the API and its settings without starting a server; a stray argument is refused."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.api_process import REPO


def run_api(*args: str) -> subprocess.CompletedProcess[str]:
    # A server would not exit: the timeout fails the test.
    return subprocess.run([sys.executable, "-m", "api", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_help_lists_every_setting_of_the_api_and_exits() -> None:
    declared = set(re.findall(r'validation_alias="(API_\w+|KAFKA_\w+)"', (REPO / "api" / "settings.py").read_text()))
    assert "API_PORT" in declared  # the pattern found the declarations

    shown = run_api("--help")

    assert shown.returncode == 0, shown.stderr
    assert "usage: python -m api" in shown.stdout
    listed = set(re.findall(r"^\s+([A-Z][A-Z_]+)\s", shown.stdout, flags=re.MULTILINE))
    assert declared <= listed, f"not in --help: {sorted(declared - listed)}"


def test_an_unknown_argument_is_refused_by_name() -> None:
    refused = run_api("--port", "9000")

    assert refused.returncode == 2
    assert "unrecognized arguments: --port 9000" in refused.stderr
