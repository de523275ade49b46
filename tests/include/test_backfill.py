"""The backfill command the project's messages print is one Airflow's CLI takes, and it resets a reused run's conf."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

from include.backfill import (
    ANALYTICS_TASK_ID,
    backfill_command,
    clear_analytics_command,
    clear_clean_command,
    consecutive_runs,
    day_ranges,
    run_conf,
)


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


def test_the_commands_select_the_runs_of_those_utc_days_whatever_airflows_default_timezone(tmp_path) -> None:
    # Airflow's CLI reads a bare date in [core] default_timezone: 2026-11-02 under New York is 05:00 UTC, after the
    # run of the 2nd (00:00 UTC), so a one-day command would select no run; one under Tokyo would start on the 1st
    script = (
        "import json, shlex, sys\n"
        "from airflow.cli.cli_parser import get_parser\n"
        "parse = lambda command: get_parser().parse_args(shlex.split(command)[1:])\n"
        "backfill, clear = (parse(c) for c in sys.argv[1:])\n"
        "print(json.dumps([str(m) for m in (backfill.from_date, backfill.to_date, clear.start_date, clear.end_date)]))"
    )
    day = date(2026, 11, 2)
    commands = [backfill_command(day, day), clear_clean_command(day, day)]
    for zone in ("America/New_York", "Asia/Tokyo"):
        env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__DEFAULT_TIMEZONE": zone}
        parsed = subprocess.run(
            [sys.executable, "-c", script, *commands], env=env, capture_output=True, text=True, timeout=120
        )
        assert parsed.returncode == 0, parsed.stderr[-2000:]
        moments = [datetime.fromisoformat(m) for m in json.loads(parsed.stdout.strip().splitlines()[-1])]
        assert moments == [datetime(2026, 11, 2, tzinfo=UTC)] * 4, zone


def test_a_conf_reaches_airflows_cli_as_json() -> None:
    conf = {"lake_bucket": "scratch-lake", "topic_prefix": "it's"}  # a quote the shell must keep
    args = _parsed(backfill_command(date(2026, 11, 2), date(2026, 11, 2), conf=conf))
    assert json.loads(args.dag_run_conf) == conf


def test_another_dag_id() -> None:
    assert _parsed(backfill_command(date(2026, 11, 2), date(2026, 11, 2), "scratch_dag")).dag_id == "scratch_dag"


def test_the_clear_command_parses_with_airflows_cli_and_selects_only_the_analytics_of_those_days() -> None:
    from airflow.cli.cli_parser import get_parser

    words = shlex.split(clear_analytics_command(date(2026, 11, 2), date(2026, 11, 3)))
    assert words[:3] == ["airflow", "tasks", "clear"]
    args = get_parser().parse_args(words[1:])
    assert args.dag_id == "pinterest_daily" and not args.downstream and not args.yes  # Airflow asks first
    # the runs' logical dates are their days' starts (UTC midnight): both ends are included
    assert (args.start_date, args.end_date) == (datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    # Airflow 3.3 matches it as a substring of the task ids, not as a regex (SerializedDAG.partial_subset): the id
    # alone; the backfill test in tests/dags runs the command on the stack's scheduler
    assert args.task_regex == ANALYTICS_TASK_ID == "spark_analytics"


def test_days_become_runs_of_consecutive_days() -> None:
    days = [date(2026, 11, n) for n in (5, 1, 2, 3, 9, 10, 2)]
    assert consecutive_runs(days) == [
        (date(2026, 11, 1), date(2026, 11, 3)),
        (date(2026, 11, 5), date(2026, 11, 5)),
        (date(2026, 11, 9), date(2026, 11, 10)),
    ]
    assert consecutive_runs([]) == []


def test_three_or_more_consecutive_days_read_as_a_range() -> None:
    october = [date(2026, 10, 4) + timedelta(days=n) for n in range(51)]  # 2026-10-04 to 2026-11-23
    days = [*october, date(2026, 11, 25), date(2026, 11, 27), date(2026, 11, 28), date(2026, 11, 25)]
    assert day_ranges(days) == "2026-10-04..2026-11-23, 2026-11-25, 2026-11-27, 2026-11-28"
    assert day_ranges([]) == ""


def test_the_clean_clear_command_parses_and_clears_the_analytics_after_it() -> None:
    from airflow.cli.cli_parser import get_parser

    words = shlex.split(clear_clean_command(date(2026, 11, 2), date(2026, 11, 3)))
    args = get_parser().parse_args(words[1:])
    assert (args.dag_id, args.task_regex, args.downstream, args.yes) == ("pinterest_daily", "spark_clean", True, False)
    assert (args.start_date.date(), args.end_date.date()) == (date(2026, 11, 2), date(2026, 11, 3))


def test_the_runs_conf_repeats_what_it_knows_and_its_first_day_even_when_none() -> None:
    assert run_conf("lake", "topics", date(2026, 11, 3)) == {
        "lake_bucket": "lake", "topic_prefix": "topics", "lake_first_day": "2026-11-03",
    }  # fmt: skip
    # a lake under --lake-root, a job run by hand: no bucket nor topics to name; no first day is null, not absent,
    # since an absent one would take the DAG's default (LAKE_FIRST_DAY)
    assert run_conf(None, "", None) == {"lake_first_day": None}


def test_the_runs_conf_repeats_what_the_run_was_given_with_its_lake_as_resolved() -> None:
    given = {
        "min_records": 5, "max_quarantine_share": 0.2, "topic_prefix": "topics", "lake_first_day": "2026-11-01",
        "accept_partial": True,  # a decision about one day, which a suggested command never repeats
    }  # fmt: skip
    assert run_conf("lake", "topics", date(2026, 11, 3), given) == {
        "min_records": 5, "max_quarantine_share": 0.2, "topic_prefix": "topics", "lake_first_day": "2026-11-03",
        "lake_bucket": "lake",
    }  # fmt: skip
    assert given["lake_first_day"] == "2026-11-01"  # the run's conf itself is left as it was
    # what the run did not resolve is left out, even when given (a lake under --lake-root)
    assert run_conf(None, None, None, {"lake_bucket": "x", "topic_prefix": "y", "min_records": 3}) == {
        "lake_first_day": None, "min_records": 3,
    }  # fmt: skip
