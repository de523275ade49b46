"""Remove what a refused ``airflow backfill create`` left behind on SQLite (runs in the stack's Airflow env).

When SQLite refuses one of its writes ("database is locked"), Airflow 3.3 removes the backfill it had begun,
but only as a best effort: that removal can be refused the same way, and then the backfill stays active with
some of its runs, and every new ``backfill create`` of the DAG fails with "Another backfill is running".
This finishes Airflow's own clean-up (the same three deletes), for the DAG's active backfills created since
the refused command began, retrying while SQLite is busy.

Usage: ``python -m devstack.orphan_backfills <dag_id> <since ISO-8601>``; prints the ids removed. The CLI
wrapper (``python -m devstack airflow backfill create``) and the REST client (``AirflowClient.backfill``) call
it through ``discard_from_outside`` before they try again.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime

from devstack import paths, processes
from devstack.environment import process_env

DELETE_ATTEMPTS = 10
BACKFILL_ATTEMPTS = 5  # of a backfill create refused by SQLite, by the CLI wrapper and the REST client (a loaded
# 2-core machine saw three refusals in a row)


def discard(dag_id: str, since: datetime) -> list[int]:
    """Delete the DAG's active backfills created at or after ``since``, with their runs; return their ids."""
    from airflow.models.backfill import Backfill, BackfillDagRun
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select
    from sqlalchemy.exc import OperationalError

    attempt = 1
    while True:
        try:
            with create_session() as session:  # one transaction, committed at the end
                orphans = list(
                    session.scalars(
                        select(Backfill.id).where(
                            Backfill.dag_id == dag_id, Backfill.completed_at.is_(None), Backfill.created_at >= since
                        )
                    )
                )
                if orphans:
                    session.execute(delete(BackfillDagRun).where(BackfillDagRun.backfill_id.in_(orphans)))
                    session.execute(delete(DagRun).where(DagRun.backfill_id.in_(orphans)))
                    session.execute(delete(Backfill).where(Backfill.id.in_(orphans)))
            return orphans
        except OperationalError as error:
            if "database is locked" not in str(error) or attempt == DELETE_ATTEMPTS:
                raise
            time.sleep(attempt)
            attempt += 1


def discard_from_outside(dag_id: str, since: datetime) -> str:
    """Run ``discard`` in the stack's Airflow environment; return the ids removed (space-separated, or "")."""
    done = subprocess.run(
        [str(paths.VENV_BIN / "python"), "-m", "devstack.orphan_backfills", dag_id, since.isoformat()],
        env=process_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise processes.StackError(f"could not remove the partial backfill of {dag_id}:\n{done.stderr[-2000:]}")
    return done.stdout.strip()


def main(argv: list[str]) -> None:
    dag_id, since = argv
    print(" ".join(map(str, discard(dag_id, datetime.fromisoformat(since)))))


if __name__ == "__main__":
    main(sys.argv[1:])
