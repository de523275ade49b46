"""Credentials of the local stack: generated once into `.stack/secrets.env` (mode 600), never in the repo.

A value already set in the environment wins over the generated one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from devstack import paths

GENERATED = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "AIRFLOW_PASSWORD", "AIRFLOW_JWT_SECRET")
# Airflow signs its JWTs with HS512, whose key should hold at least 64 bytes (RFC 7518 3.2; PyJWT warns otherwise).
JWT_SECRET_MIN_BYTES = 64


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``KEY=value`` lines (no quoting, no interpolation)."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def write_private_file(path: Path, text: str) -> None:
    """Replace a file atomically with one readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)  # one left by a crash keeps its mode, whatever it is
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)
    tmp.replace(path)


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Write ``KEY=value`` lines readable by the owner only."""
    write_private_file(path, "".join(f"{k}={v}\n" for k, v in values.items()))


def _new_value(name: str) -> str:
    if name == "MINIO_ROOT_USER":
        return "lake-" + secrets.token_hex(4)
    if name == "AIRFLOW_JWT_SECRET":
        return secrets.token_urlsafe(JWT_SECRET_MIN_BYTES)
    return secrets.token_urlsafe(24)


def load_secrets() -> dict[str, str]:
    """The stack's credentials, creating the missing ones."""
    stored = read_env_file(paths.SECRETS_FILE)
    missing = [n for n in GENERATED if n not in stored]
    if missing:
        stored.update({n: _new_value(n) for n in missing})
        write_env_file(paths.SECRETS_FILE, stored)
    return {n: os.environ.get(n, stored[n]) for n in GENERATED}


def renew_short_jwt_secret() -> bool:
    """Replace a stored JWT secret too short for HS512 (made by an earlier version); True if it was replaced.

    Call it only while no Airflow process runs: each reads the secret when it starts, and all must share it.
    """
    stored = read_env_file(paths.SECRETS_FILE)
    current = stored.get("AIRFLOW_JWT_SECRET")
    if current is None or len(current.encode()) >= JWT_SECRET_MIN_BYTES:
        return False
    stored["AIRFLOW_JWT_SECRET"] = _new_value("AIRFLOW_JWT_SECRET")
    write_env_file(paths.SECRETS_FILE, stored)
    return True
