"""Write the `.env` file docker-compose.yaml needs, with fresh random secrets: ``python3 docker/make_env.py``.

Values already in the file are kept (run it again after an upgrade to add new ones); the file is readable by its
owner only. Standard library only: it runs with any Python 3 on the host.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / ".env"

# The ${VAR:?} variables of docker-compose.yaml and how to make a value for each (URL-safe: no quoting needed).
GENERATORS: dict[str, Callable[[], str]] = {
    "MINIO_ROOT_USER": lambda: "lake-" + secrets.token_hex(4),
    "MINIO_ROOT_PASSWORD": lambda: secrets.token_urlsafe(24),
    "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(24),
    "AIRFLOW_PASSWORD": lambda: secrets.token_urlsafe(18),
    "AIRFLOW_JWT_SECRET": lambda: secrets.token_urlsafe(32),
    "AIRFLOW_FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode(),
}


def read_env(path: Path) -> dict[str, str]:
    """``KEY=value`` pairs of an env file (comments and blank lines skipped); empty when it does not exist."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def complete_env(current: dict[str, str]) -> dict[str, str]:
    """``current`` plus a new value for every required variable it lacks or leaves empty."""
    return {**current, **{name: make() for name, make in GENERATORS.items() if not current.get(name)}}


def write_env(path: Path, values: dict[str, str]) -> None:
    """Replace ``path`` atomically with ``KEY=value`` lines, mode 600."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write("# Secrets for docker-compose.yaml (python3 docker/make_env.py). Never commit this file.\n")
        file.writelines(f"{key}={value}\n" for key, value in values.items())
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help=f"the env file (default {DEFAULT_PATH})")
    path = parser.parse_args().path
    current = read_env(path)
    completed = complete_env(current)
    added = [name for name in completed if name not in current or not current[name]]
    if added:
        write_env(path, completed)
    print(f"{path}: {'added ' + ', '.join(added) if added else 'already complete'}")


if __name__ == "__main__":
    main()
