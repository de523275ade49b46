"""The local stack's settings as the benchmarks see them: ``.stack/stack.env`` under the caller's environment."""

from __future__ import annotations

import os


def stack_env() -> dict[str, str]:
    """``.stack/stack.env`` (written by ``devstack up``), overridden by this process's environment but for its AWS
    settings: the lake takes the stack's own keys, and MinIO refuses them sent with a caller's session token."""
    from devstack import paths
    from devstack.environment import without_aws
    from devstack.secrets import read_env_file

    return {**read_env_file(paths.STACK_ENV_FILE), **without_aws(os.environ)}
