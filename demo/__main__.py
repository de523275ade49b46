"""`make demo`: seed history, post live records, backfill and run `pinterest_daily`, print the analytics.

Usage: python -m demo [--history-days 3] [--per-day 400] [--live 300] [--seed N]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pyarrow.parquet as pq
from botocore.exceptions import ClientError, EndpointConnectionError
from rich.console import Console
from rich.table import Table

from devstack import paths
from devstack.airflow_client import AirflowClient, AirflowError, wait_budget
from devstack.processes import StackError
from devstack.secrets import read_env_file
from include import lake
from include.backfill import DAG_ID
from include.days import days_between, midnight
from include.drain.s3_errors import stored_text
from include.emulator.__main__ import (
    fresh_seed,
    parse_args,
    positive_int,
    refusals,
    run_post,
    seed_number,
    seed_with_progress,
)
from include.emulator.generate import IND_STRIDE, MAX_SEED
from include.emulator.post import ApiUnreachableError, check_api
from include.emulator.seed import FIRST_DAY, SeedError
from include.records import ENTITIES
from include.settings import PlatformSettings
from spark_jobs.manifest import cleaned_from, parse_manifest

console = Console()
errors = Console(stderr=True)


def reporter() -> Callable[[str], None]:
    """Print a wait's progress lines, each with the time since the wait began."""
    began = time.monotonic()

    def report(line: str) -> None:
        elapsed = int(time.monotonic() - began)
        console.print(f"  [{elapsed // 60}:{elapsed % 60:02d}] {line}", markup=False, highlight=False, soft_wrap=True)

    return report


def wait_for_running_backfill(client: AirflowClient) -> None:
    """Wait, with progress, for a backfill of the DAG still running (e.g. of an interrupted demo): Airflow allows one
    per DAG. A paused one would never end: say how to resume or cancel it instead."""
    active = client.active_backfill(DAG_ID)
    if active is None:
        return
    what = f"backfill {active['id']} of {DAG_ID} ({active['from_date'][:10]}..{active['to_date'][:10]})"
    if active["is_paused"]:
        raise AirflowError(
            f"{what} is paused: resume or cancel it on {client.dag_url(DAG_ID)}, then run the demo again"
        )
    console.print(
        f"  {what} is still running: waiting for it (or cancel it on {client.dag_url(DAG_ID)})", soft_wrap=True
    )
    client.unpause(DAG_ID)  # its runs stay queued while the DAG is paused
    client.wait_for_backfill(active, reporter())


def cell(value: Any) -> str:
    """A result's value as the tables show it: a float with one decimal, a null as ``null``."""
    if value is None:
        return "null"
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


def row_order(row: dict[str, Any]) -> tuple[tuple[bool, Any], ...]:
    """A result row's place in its table: by its values, column by column, nulls last (as the analytics rank)."""
    return tuple((value is None, "" if value is None else value) for value in row.values())


def post_live(api_url: str, triples: int, seed: int) -> None:
    """Post live triples through the API; stop the demo unless every record was accepted."""
    summary = run_post(parse_args(["post", "--url", api_url, "--count", str(triples), "--seed", str(seed)]))
    refused = refusals(summary)
    if refused:
        raise SystemExit(f"the API did not accept every live record: {refused}; see .stack/logs/api.log")


def run_days(client: AirflowClient, first: date, last: date) -> None:
    """Backfill ``first..last`` and wait for every run of those days, whoever created it (backfill or schedule).

    The backfill comes first and the unpause after it: a paused DAG keeps the backfill's runs queued, and once
    unpaused the scheduler finds yesterday's run there already instead of starting its own next to the backfill.
    """
    # one day at a time: the analytics of a day read the clean partitions of the days before it
    backfill = client.get_backfill(client.backfill(DAG_ID, midnight(first), midnight(last), max_active_runs=1))
    client.unpause(DAG_ID)
    client.wait_for_days(DAG_ID, days_between(first, last), backfill, reporter())


def first_day_to_backfill(s3: Any, bucket: str, seeded_from: date, lake_first_day: date | None = None) -> date:
    """The first day the backfill must run: ``seeded_from``, or an earlier day the lake does not have ready.

    The analytics of a day need every day since the lake's first day (``lake_first_day``, LAKE_FIRST_DAY), or
    without one since its first drained day, drained complete and cleaned from the raw data it holds now, so a lake
    left by an earlier run gets the days in between (re)done too: never drained, still partial, or cleaned before
    clean partitions named their raw data. Days before ``lake_first_day`` are not needed (their runs are refused).
    """
    days: set[date] = set()
    for entity in ENTITIES:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=lake.dataset_prefix("raw", entity), Delimiter="/"
        )
        prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
        days |= {day for p in prefixes if (day := lake.partition_day(p.rstrip("/").rsplit("/", 1)[-1])) is not None}
    day = max(min(days, default=seeded_from), lake_first_day or date.min)
    while day < seeded_from:
        if not all(_day_ready(s3, bucket, entity, day) for entity in ENTITIES):
            return day
        day += timedelta(days=1)
    return seeded_from


def _day_ready(s3: Any, bucket: str, entity: str, day: date) -> bool:
    """Whether an entity's day is drained complete (or accepted as final) and cleaned from that raw data."""
    raw = _text(s3, bucket, lake.manifest_key(entity, day))
    source = _text(s3, bucket, lake.partition_prefix("clean", entity, day) + lake.SOURCE_NAME)
    if raw is None or source is None:
        return False
    manifest = parse_manifest(raw, lake.partition_prefix("raw", entity, day))
    return (manifest.status == "complete" or manifest.accepted_partial) and cleaned_from(source, manifest)


def _text(s3: Any, bucket: str, key: str) -> str | None:
    try:
        return stored_text(s3, bucket, key)
    except s3.exceptions.NoSuchBucket:
        raise SystemExit(f"there is no bucket {bucket!r} in the lake's S3 (see LAKE_BUCKET, or --bucket)") from None
    except ClientError as error:  # a name S3 refuses, keys it refuses
        code = error.response.get("Error", {}).get("Code", "")
        raise SystemExit(f"the lake's S3 refused to read s3://{bucket}/{key}: {code or error}") from None


def show_raw(s3: Any, bucket: str, days: list[date]) -> None:
    table = Table(title=f"raw partitions in s3://{bucket}/raw/ (from _manifest.json)")
    for column in ("dt", *ENTITIES, "status"):
        table.add_column(column, justify="right" if column in ENTITIES else "left")
    for day in days:
        manifests = [json.loads(s3.get_object(Bucket=bucket, Key=lake.manifest_key(e, day))["Body"].read())
                     for e in ENTITIES]  # fmt: skip
        counts = [str(sum(f["count"] for f in m["files"])) for m in manifests]
        table.add_row(day.isoformat(), *counts, "/".join(sorted({m["status"] for m in manifests})))
    console.print(table)


def show_analytics(s3: Any, bucket: str, day: date, max_rows: int = 12) -> None:
    """Print the nine results of ``day`` as one unit: those its publication names, read between two reads of the
    publication that must agree (a rerun of the day in between would change it)."""
    key = lake.publication_key(day)
    publication = _text(s3, bucket, key)
    if publication is None:
        raise SystemExit(f"the analytics of {day} are not published (no s3://{bucket}/{key}): see the run's log")
    document = json.loads(publication)
    console.print(
        f"analytics as of {day}: run {document['run_id']} (try {document['attempt']}), published "
        f"{document['published_at']}, from {document['raw_status']} raw data (s3://{bucket}/{key})"
    )
    for name, expected_rows in document["results"].items():
        prefix = lake.partition_prefix("analytics", name, day)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
                if o["Key"].endswith(".parquet") and "/_" not in o["Key"].removeprefix(prefix)]  # fmt: skip
        rows = []
        for part in keys:
            body = io.BytesIO(s3.get_object(Bucket=bucket, Key=part)["Body"].read())
            rows += pq.read_table(body, use_threads=False).to_pylist()
        if len(rows) != expected_rows:
            raise SystemExit(f"s3://{bucket}/{prefix} holds {len(rows)} rows, its publication says {expected_rows}")
        # a title line of its own: a table's title wraps to the table's width
        console.print(f"\n[bold]{name}[/bold] as of {day}: {len(rows)} rows in s3://{bucket}/{prefix}")
        table = Table()
        for column in rows[0] if rows else ["(empty)"]:
            table.add_column(column)
        rows.sort(key=row_order)
        for row in rows[:max_rows]:
            table.add_row(*map(cell, row.values()))
        console.print(table)
        if len(rows) > max_rows:
            console.print(
                f"(the first {max_rows} of {len(rows)} rows, in the order of their values; every row: README, "
                "*Reading the lake and the results*)"
            )
    if _text(s3, bucket, key) != publication:
        raise SystemExit(f"the analytics of {day} were rewritten while they were shown: run the demo again")


def check_lake_bucket(s3: Any, bucket: str) -> None:
    """Stop, naming the bucket, when the lake's S3 has no such bucket, refuses the stack's keys on it, or fails."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket"):
            raise SystemExit(
                f"there is no bucket {bucket!r} in the lake's S3 (LAKE_BUCKET): `make up` creates it"
            ) from None
        if code in ("403", "AccessDenied"):
            raise SystemExit(f"the lake's S3 refuses bucket {bucket!r} to the stack's keys (HTTP 403)") from None
        raise SystemExit(f"the lake's S3 answered a HEAD of bucket {bucket!r} with {code or error}") from None


def run(args: argparse.Namespace, env: dict[str, str]) -> None:
    """The five steps; the lake's bucket, the API (healthy and ready) and Airflow (healthy, no backfill running) are
    checked before anything is written."""
    settings = PlatformSettings.model_validate(env)  # the stack's settings for everything, not the shell's
    s3 = settings.s3_client()
    check_lake_bucket(s3, settings.lake_bucket)
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=args.history_days), today - timedelta(days=1)
    if refusal := first_day_refusal(settings.lake_first_day, first):
        raise SystemExit(refusal)

    client = AirflowClient.from_env(env)
    client.check_health()
    client.wait_for_dag(DAG_ID)
    wait_for_running_backfill(client)
    check_api(env["API_URL"])  # before the history goes into Kafka: a rerun would add it again

    console.rule(f"1/5 seeding {first}..{last} straight into Kafka (historical record timestamps)")
    seed_with_progress(settings, first, last, args.per_day, args.seed)

    console.rule(f"2/5 posting {args.live} live pin/geo/user triples to the API at {env['API_URL']}")
    post_live(env["API_URL"], args.live, args.seed + 1)

    start = first_day_to_backfill(s3, settings.lake_bucket, first, settings.lake_first_day)
    if start < first:
        console.print(
            f"  the lake is not ready from {start} on (days not drained complete or not cleaned): redoing them"
        )
    console.rule(f"3/5 backfilling {start}..{last} with {DAG_ID} (drain, quality gate, Spark clean + analytics)")
    run_days(client, start, last)

    console.rule(f"4/5 running today's interval [{today}, {today + timedelta(days=1)}) as a manual run (partial)")
    run_id = client.trigger(DAG_ID, midnight(today), midnight(today + timedelta(days=1)))
    client.wait_for_run(DAG_ID, run_id, timeout=wait_budget(1), report=reporter())

    console.rule("5/5 results")
    show_raw(s3, settings.lake_bucket, days_between(first, today))
    show_analytics(s3, settings.lake_bucket, today)
    console.print(f"Airflow UI: {env['AIRFLOW_API_URL']} (user {env['AIRFLOW_USERNAME']}, password in "
                  f"{paths.AIRFLOW_HOME / 'passwords.json'}); MinIO console: http://127.0.0.1:9001")  # fmt: skip


def first_day_refusal(lake_first_day: date | None, seeded_from: date) -> str | None:
    """Why the backfill of the seeded days would be refused for the lake's first day, else None."""
    if lake_first_day is None or lake_first_day <= seeded_from:
        return None
    return (
        f"the stack's LAKE_FIRST_DAY {lake_first_day} is after the first seeded day {seeded_from}: the DAG refuses "
        f"runs of days before it. Start the stack with an earlier one (`make down && LAKE_FIRST_DAY={seeded_from} "
        "make up`), or without it"
    )


def size_refusal(history_days: int, per_day: int, live: int, today: date) -> str | None:
    """Why the emulator would refuse these sizes once the demo had begun writing, else None."""
    if history_days > (today - FIRST_DAY).days:
        return f"--history-days {history_days} reaches before {FIRST_DAY}: Kafka record timestamps cannot be earlier"
    if history_days * per_day > IND_STRIDE:
        return f"--per-day times --history-days is more than one seed's {IND_STRIDE} triples"
    if live > IND_STRIDE:
        return f"--live {live} is more than one seed's {IND_STRIDE} triples"
    return None


def demo_seed(text: str) -> int:
    """argparse type of the demo's seed: the emulator's range less its last (the live records take the seed after
    it)."""
    return seed_number(text, top=MAX_SEED - 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--history-days", type=positive_int, default=3, help="past days seeded and backfilled")
    parser.add_argument("--per-day", type=positive_int, default=400, help="triples seeded per past day")
    parser.add_argument("--live", type=positive_int, default=300, help="triples posted through the API today")
    parser.add_argument(
        "--seed",
        type=demo_seed,
        default=fresh_seed() % MAX_SEED,
        help="emulator seed (default: new each run, so a rerun adds new records instead of repeating them; the same "
        "seed twice posts the same records again, and the quality gate's duplicate-key check then fails those days)",
    )
    parser.add_argument(
        "--show",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="run nothing: print the analytics an earlier run published for that day, and exit",
    )
    parser.add_argument("--bucket", help="with --show: the lake's bucket (default: the stack's LAKE_BUCKET)")
    args = parser.parse_args(argv)
    if args.bucket and not args.show:
        parser.error("--bucket goes with --show (the demo itself runs on the stack's lake)")
    if refusal := size_refusal(args.history_days, args.per_day, args.live, datetime.now(UTC).date()):
        parser.error(refusal)

    env = read_env_file(paths.STACK_ENV_FILE)
    if not env:
        raise SystemExit("the local stack is not set up: run `make up` first")
    try:
        if args.show:
            settings = PlatformSettings.model_validate(env)
            show_analytics(settings.s3_client(), args.bucket or settings.lake_bucket, args.show)
            return 0
        run(args, env)
    except KeyboardInterrupt:
        errors.print("interrupted: runs and backfills already created go on in Airflow (see its UI); the next demo "
                     "waits for a backfill still running")  # fmt: skip
        return 130
    except httpx.TimeoutException as error:
        return _fail(f"Airflow at {env['AIRFLOW_API_URL']} did not answer in time ({error!r}); "
                     "see .stack/logs/airflow-api-server.log")  # fmt: skip
    except httpx.TransportError as error:
        return _fail(f"Airflow does not answer at {env['AIRFLOW_API_URL']} ({error!r}): start the stack with `make up`")
    except EndpointConnectionError as error:
        return _fail(f"MinIO does not answer ({error}): start the stack with `make up`")
    except (AirflowError, TimeoutError, SeedError, StackError, ApiUnreachableError) as error:
        return _fail(str(error))
    return 0


def _fail(message: str) -> int:
    """Print ``message`` as one red line on stderr; the demo's exit code."""
    errors.print(message, style="red", markup=False, soft_wrap=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
