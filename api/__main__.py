"""Start the API under uvicorn: ``python -m api``. Its settings come from the environment (``--help`` lists them)."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from api.settings import ApiSettings
from include.settings import PlatformSettings

# Not imported from api.metrics: importing it creates this process's metric files, which must come after the cleanup.
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """Let every worker's figures reach /metrics (prometheus_client's multiprocess mode).

    A configured PROMETHEUS_MULTIPROC_DIR is emptied of an earlier run's ``*.db`` files; without one, several
    workers share a temporary directory, removed at exit; a single worker keeps its figures in memory. An empty
    PROMETHEUS_MULTIPROC_DIR counts as unset (prometheus_client would write its files into the current directory).
    """
    if os.environ.get(MULTIPROC_DIR) == "":
        del os.environ[MULTIPROC_DIR]
    configured = os.environ.get(MULTIPROC_DIR)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield
    elif workers > 1:
        with tempfile.TemporaryDirectory(prefix="ingest-api-metrics-") as directory:
            os.environ[MULTIPROC_DIR] = directory  # the spawned workers inherit it
            try:
                yield
            finally:
                del os.environ[MULTIPROC_DIR]
    else:
        yield


INHERITED_AND_READ = ("kafka_bootstrap_servers", "topic_prefix")
"""The platform's settings (``include.settings``) the API reads; the lake's and S3's it does not."""


def settings_help() -> str:
    """The environment variables the API reads, with their defaults."""
    lines = ["environment variables (default):"]
    for name, field in ApiSettings.model_fields.items():
        if name in PlatformSettings.model_fields and name not in INHERITED_AND_READ:
            continue
        lines.append(f"  {field.validation_alias!s:28} {'unset' if field.default is None else field.default}")
    lines.append(f"  {MULTIPROC_DIR:28} unset (a directory for the workers' figures; its *.db files go at start)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m api",
        description="Serve the ingest API (POST /pin/, /geo/, /user/ and their batch forms) under uvicorn.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(argv)
    settings = ApiSettings()
    with shared_metrics(settings.workers):
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            access_log=False,
            loop="uvloop",
            http="httptools",
        )


if __name__ == "__main__":
    main()
