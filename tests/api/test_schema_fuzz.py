"""Schema-driven fuzzing of the OpenAPI spec (schemathesis CLI): whatever is sent, the API never answers 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.api_process import RunningApi

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_fuzzing_the_openapi_spec_finds_no_server_error(api: RunningApi, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--seed",
            "20261125",
            "--generation-deterministic",
            "--request-timeout",
            "10",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "generated" in result.stdout
