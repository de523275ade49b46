"""The backfill command the project's messages print is one Airflow's CLI takes, and it resets a reused run's conf."""

from __future__ import annotations

import json
import shlex
from datetime import date

from include.backfill import backfill_command


def _parsed(command: str):
    from airflow.cli.cli_parser import get_parser

    words = shlex.split(command)
    assert words[:3] == ["airflow", "backfill", "create"]
    return get_parser().parse_args(words[1:])


def test_the_backfill_command_parses_with_airflows_cli_and_replaces_a_reused_runs_conf() -> None:
    args = _parsed(backfill_command(date(2026, 11, 2), date(2026, 11, 3)))
    assert (args.dag_id, args.from_date.date(), args.to_date.date()) == ("pinterest_daily", date(2026, 11, 2),
                                                                         date(2026, 11, 3))  # fmt: skip
    assert (args.max_active_runs, args.reprocess_behavior) == (1, "completed")
    # backfill_command.create_backfill: json.loads(args.dag_run_conf) when the text is not empty; then
    # models/backfill.py _handle_clear_run replaces a reused run's conf when it `is not None` (an empty one too)
    assert args.dag_run_conf == "{}" and json.loads(args.dag_run_conf) == {}


def test_another_dag_id() -> None:
    assert _parsed(backfill_command(date(2026, 11, 2), date(2026, 11, 2), "scratch_dag")).dag_id == "scratch_dag"
