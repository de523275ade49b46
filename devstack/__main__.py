"""Command line of the local stack: install, up, down, status, start/stop one service, env, airflow."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from devstack import install, paths, processes
from devstack.environment import process_env, refuse_bad_settings, settle_stack_env, shell_exports, shell_settings
from devstack.log import step
from devstack.orphan_backfills import BACKFILL_ATTEMPTS, discard_from_outside
from devstack.secrets import renew_short_jwt_secret
from devstack.services import SERVICES, HealthUnknown, Service, service


def _start(svc: Service) -> None:
    proc = processes.recorded_process(svc.name)
    if proc is not None:
        processes.wait_until(svc.name, svc.healthy, svc.timeout, proc)
        step(f"{svc.name}: already running (pid {proc.pid})")
    else:
        if processes.stop(svc.name):  # its recorded process was killed, and what it started still runs
            step(f"{svc.name}: stopped what its exited process had left running")
        processes.ensure_ports_free(svc.name, svc.ports)
        svc.prepare()
        step(f"{svc.name}: starting")
        proc = processes.start(svc.name, svc.argv(), svc.environment())
        processes.wait_until(svc.name, svc.healthy, svc.timeout, proc)
        step(f"{svc.name}: healthy (pid {proc.pid})")
    svc.after_start()


def cmd_install(_: argparse.Namespace) -> None:
    install.install_all()
    step("install complete")


def _renew_short_jwt_secret() -> None:
    """Replace a JWT secret too short for HS512 while no Airflow process runs (they must all share it)."""
    airflow = [s.name for s in SERVICES if s.name.startswith("airflow-")]
    if any(processes.recorded_process(name) or processes.leftovers(name) for name in airflow):
        return
    if renew_short_jwt_secret():
        step("made a new Airflow JWT secret: the stored one was too short for HS512")


def cmd_up(_: argparse.Namespace) -> None:
    refuse_bad_settings(os.environ)  # before minutes of installing
    install.install_all()
    _renew_short_jwt_secret()
    _settle_settings()
    for svc in SERVICES:
        _start(svc)
    step(f"stack is up; settings for tools in {paths.STACK_ENV_FILE}")
    _report(_settled_rows())


def cmd_down(_: argparse.Namespace) -> None:
    for svc in reversed(SERVICES):
        if processes.stop(svc.name):
            step(f"{svc.name}: stopped")


def _settle_settings() -> None:
    """Record the platform settings for tools; while the stack runs, keep those it started with, for the services
    started now too (an API started with the caller's other PINTEREST_TOPIC_PREFIX would accept records that no
    drain reads, and Kafka's and MinIO's start would make the caller's topics and bucket)."""
    os.environ.update(shell_settings(settle_stack_env(_running())))


def cmd_start(args: argparse.Namespace) -> None:
    _settle_settings()
    _start(service(args.service))


def cmd_stop(args: argparse.Namespace) -> None:
    stopped = processes.stop(service(args.service).name)
    step(f"{args.service}: {'stopped' if stopped else 'was not running'}")


def _state(svc: Service) -> tuple[str, str]:
    proc = processes.recorded_process(svc.name)
    if proc is None:
        left = processes.leftovers(svc.name)
        return ("leftover", str(min(p.pid for p in left))) if left else ("stopped", "-")
    try:
        ok = svc.healthy()
    except HealthUnknown:
        return "unknown", str(proc.pid)
    except Exception:  # any other failure of the probe means "not healthy"
        ok = False
    return ("healthy" if ok else "unhealthy"), str(proc.pid)


def _spark_state() -> str:
    spark_submit = paths.VENV_BIN / "spark-submit"
    jars = paths.pyspark_jars_dir()
    has_s3a = any(jars.glob("hadoop-aws-*.jar"))
    has_cds = paths.SPARK_CDS_ARCHIVE.exists()
    state = "ready" if spark_submit.exists() and has_s3a else "missing"
    return f"{state} ({spark_submit}, s3a jars: {has_s3a}, class-data archive: {has_cds})"


StatusRow = tuple[str, str, str, str]  # service, state, pid, url
SETTLE_S = 30.0  # how long `up` asks again after a service it saw healthy answers slowly or not at all


def _rows() -> list[StatusRow]:
    return [(s.name, *_state(s), s.url) for s in SERVICES]


def _settled_rows() -> list[StatusRow]:
    """The status after `up`: each service was healthy a moment ago, so a state other than healthy (a probe's short
    timeout on a busy machine) is asked again for up to SETTLE_S before it counts."""
    deadline = time.monotonic() + SETTLE_S
    rows = _rows()
    while any(row[1] != "healthy" for row in rows) and time.monotonic() < deadline:
        time.sleep(2)
        rows = _rows()
    return rows


def cmd_status(_: argparse.Namespace) -> None:
    _report(_rows())


def _report(rows: list[StatusRow]) -> None:
    """Print the status table; exit 1 unless every service is healthy."""
    print(f"{'service':24} {'state':10} {'pid':>8}  url")
    for name, state, pid, url in rows:
        print(f"{name:24} {state:10} {pid:>8}  {url}")
    print(f"{'spark':24} {_spark_state()}")
    print(f"Airflow login: user 'admin', password in {paths.AIRFLOW_HOME / 'passwords.json'}")
    if any(r[1] == "leftover" for r in rows):
        print(
            "leftover: the service's recorded process exited and left processes running; make up or make down "
            "stops them"
        )
    if any(r[1] == "unknown" for r in rows):
        print("unknown: the airflow-api-server reports these components' health, and it does not answer")
    if any(r[1] != "healthy" for r in rows):
        sys.exit(1)


def cmd_env(_: argparse.Namespace) -> None:
    """Print `export` lines of the platform settings, for `eval "$(python -m devstack env)"`."""
    print("\n".join(shell_exports(settle_stack_env(_running()))))


def _running() -> bool:
    """Whether any service of the stack runs (its recorded process, or what an exited one left)."""
    return any(processes.recorded_process(s.name) or processes.leftovers(s.name) for s in SERVICES)


def retry_on_sqlite_lock(argv: list[str], returncode: int, output: str) -> bool:
    """Whether a failed ``airflow backfill create`` should run again: SQLite refused a write it could not wait for.

    With SQLite (WAL), a transaction that read before writing fails at once when the scheduler wrote meanwhile;
    Airflow then removes the partial backfill, so the command can simply run again.
    """
    return argv[:2] == ["backfill", "create"] and returncode != 0 and "database is locked" in output


def option_value(argv: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in ``argv``, or None."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def cmd_airflow(args: argparse.Namespace) -> None:
    env = process_env()
    airflow = str(paths.VENV_BIN / "airflow")
    if args.args[:2] != ["backfill", "create"]:
        os.execve(airflow, ["airflow", *args.args], env)
    dag_id = option_value(args.args, "--dag-id")
    for attempt in range(1, BACKFILL_ATTEMPTS + 1):
        started = datetime.now(UTC) - timedelta(seconds=1)
        done = subprocess.run([airflow, *args.args], env=env, capture_output=True, text=True, check=False)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        if not retry_on_sqlite_lock(args.args, done.returncode, done.stdout + done.stderr):
            sys.exit(done.returncode)
        # the last time too: a partial backfill left over would stand in the way of every later one
        removed = discard_from_outside(dag_id, started) if dag_id else ""
        left = f"removed what Airflow's clean-up left of backfill {removed}" if removed else "nothing was left over"
        if attempt == BACKFILL_ATTEMPTS:
            step(f"SQLite was busy with the scheduler's writes {attempt} times; {left}: giving up")
            sys.exit(done.returncode)
        step(f"SQLite was busy with the scheduler's writes; {left}: try {attempt + 1}")
        time.sleep(2 * attempt)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="fetch and build Kafka, MinIO and the s3a jars").set_defaults(fn=cmd_install)
    sub.add_parser("up", help="install if needed, start every service, wait until healthy").set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop every service by its recorded PID").set_defaults(fn=cmd_down)
    sub.add_parser("status", help="state and URL of each service (exit 1 if one is not healthy)").set_defaults(
        fn=cmd_status
    )
    for verb, fn in (("start", cmd_start), ("stop", cmd_stop)):
        p = sub.add_parser(verb, help=f"{verb} one service")
        p.add_argument("service", choices=[s.name for s in SERVICES])
        p.set_defaults(fn=fn)
    sub.add_parser("env", help="print the platform settings as export lines").set_defaults(fn=cmd_env)
    p = sub.add_parser("airflow", help="run the airflow CLI with the stack's environment")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_airflow)
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except processes.StackError as exc:
        step(f"error: {exc}")
        sys.exit(2)
    except FileNotFoundError as exc:  # a program of the stack not installed yet, or a prerequisite missing
        hint = f"`make install` puts the stack's own programs in place; {install.PREREQUISITES}"
        step(f"error: {exc.filename or exc} not found ({hint})")
        sys.exit(2)
    except KeyboardInterrupt:
        step(interrupted_message(args.command))
        sys.exit(130)


def interrupted_message(command: str) -> str:
    """What an interrupted command leaves, and what to run next."""
    if command in ("down", "stop"):
        return "interrupted: what was not stopped yet keeps running; run it again to stop the rest"
    return "interrupted: what was started keeps running; `make up` goes on from there, `make down` stops it"


if __name__ == "__main__":
    main()
