"""The benchmarks' view of the stack's settings."""

from __future__ import annotations

from benchmarks.stack import stack_env as bench_stack_env
from devstack import paths
from devstack.secrets import read_env_file


def test_the_benchmarks_take_the_stacks_lake_keys_and_no_aws_setting_of_the_shell(stack_env, monkeypatch):
    recorded = read_env_file(paths.STACK_ENV_FILE)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "shell-key")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "shell-session-token")
    monkeypatch.setenv("LAKE_BUCKET", "shell-lake")  # other settings: the caller's wins, as documented

    env = bench_stack_env()

    assert env["AWS_ACCESS_KEY_ID"] == recorded["AWS_ACCESS_KEY_ID"] == stack_env["AWS_ACCESS_KEY_ID"]
    assert "AWS_SESSION_TOKEN" not in env
    assert env["LAKE_BUCKET"] == "shell-lake"
