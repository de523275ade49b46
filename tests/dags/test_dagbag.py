"""Airflow parses every file in dags/ without import errors, with the stack's configuration."""

from __future__ import annotations

import json
import subprocess
import sys

from devstack import paths
from devstack.environment import process_env

_PARSE = """
import json, os
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dag_ids)}))
"""


def test_dags_folder_parses_without_import_errors():
    # A fresh interpreter with the stack's environment, as the dag-processor runs it.
    result = subprocess.run(
        [sys.executable, "-c", _PARSE], env=process_env(), capture_output=True, text=True, cwd=paths.REPO, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert "pinterest_daily" in parsed["dags"]
