"""The local stack's settings as the benchmarks see them: ``.stack/stack.env`` under the caller's environment."""

from __future__ import annotations

import os


def stack_env() -> dict[str, str]:
    """``.stack/stack.env`` (written by ``devstack up``), overridden by this process's environment."""
    from devstack import paths
    from devstack.secrets import read_env_file

    return {**read_env_file(paths.STACK_ENV_FILE), **os.environ}
