"""Write the Airflow simple auth manager's password file from the environment, before the api-server starts.

``AIRFLOW_USERNAME`` (default ``admin``) gets ``AIRFLOW_PASSWORD``; the file is
``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE``, replaced atomically and readable by its owner only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_passwords(path: Path, username: str, password: str) -> None:
    """Replace ``path`` with ``{username: password}`` as JSON, mode 600."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({username: password}, file)
    tmp.replace(path)


def main() -> None:
    required = ("AIRFLOW_PASSWORD", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    missing = [name for name in required if not os.environ.get(name)]
    if missing:
        raise SystemExit(f"{' and '.join(missing)} must be set")
    write_passwords(
        Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]),
        os.environ.get("AIRFLOW_USERNAME") or "admin",
        os.environ["AIRFLOW_PASSWORD"],
    )


if __name__ == "__main__":
    main()
