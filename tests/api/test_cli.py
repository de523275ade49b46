"""`python -m api --help` describes the API and its settings without starting a server; a stray argument is refused."""

from __future__ import annotations

import re
import subprocess
import sys

from api.settings import ApiSettings
from tests.api_process import REPO


def run_api(*args: str) -> subprocess.CompletedProcess[str]:
    # A server would not exit: the timeout fails the test.
    return subprocess.run([sys.executable, "-m", "api", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_help_lists_every_setting_the_api_reads_and_exits() -> None:
    source = "\n".join(path.read_text() for path in (REPO / "api").glob("*.py"))
    fields = ApiSettings.model_fields
    read = {str(fields[name].validation_alias) for name in re.findall(r"settings\.(\w+)", source) if name in fields}
    assert "settings.topic(" in source  # the topic names come from PINTEREST_TOPIC_PREFIX
    expected = read | {"PINTEREST_TOPIC_PREFIX", "PROMETHEUS_MULTIPROC_DIR"}
    assert {"API_PORT", "KAFKA_BOOTSTRAP_SERVERS"} <= expected  # the search found the code's reads

    shown = run_api("--help")

    assert shown.returncode == 0, shown.stderr
    assert "usage: python -m api" in shown.stdout
    listed = set(re.findall(r"^\s+([A-Z][A-Z_]+)\s", shown.stdout, flags=re.MULTILINE))
    assert expected <= listed, f"not in --help: {sorted(expected - listed)}"
    assert not listed & {"LAKE_BUCKET", "AWS_SECRET_ACCESS_KEY", "S3_ENDPOINT_URL"}  # the API never reads them


def test_an_unknown_argument_is_refused_by_name() -> None:
    refused = run_api("--port", "9000")

    assert refused.returncode == 2
    assert "unrecognized arguments: --port 9000" in refused.stderr
