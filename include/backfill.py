"""The Airflow command that drains and cleans a range of days again, as the project's messages print it."""

from __future__ import annotations

from datetime import date

DAG_ID = "pinterest_daily"  # the DAG that drains and cleans each day (dags/pinterest_daily.py)


def backfill_command(first: date, last: date, dag_id: str = DAG_ID) -> str:
    """``airflow backfill create`` over ``first`` to ``last`` (both inclusive), one day at a time.

    ``--reprocess-behavior completed`` redoes days that already have a finished run, and ``--dag-run-conf '{}'``
    replaces the conf of a run it reuses: given none, Airflow leaves it as it was (a scratch ``lake_bucket``, say).
    """
    return (
        f"airflow backfill create --dag-id {dag_id} --max-active-runs 1 --reprocess-behavior completed "
        f"--dag-run-conf '{{}}' --from-date {first} --to-date {last}"
    )
