"""`make demo`: seed history, post live records, backfill and run `pinterest_daily`, print the analytics.

Usage: python -m demo [--history-days 3] [--per-day 400] [--live 300] [--seed 7]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from devstack import paths
from devstack.airflow_client import AirflowClient
from devstack.secrets import read_env_file
from include import lake
from include.emulator.__main__ import main as emulator
from include.emulator.__main__ import parse_args, refusals, run_post
from include.records import ENTITIES
from include.settings import PlatformSettings
from spark_jobs.manifest import cleaned_from, parse_manifest

DAG_ID = "pinterest_daily"
console = Console()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def post_live(api_url: str, triples: int, seed: int) -> None:
    """Post live triples through the API; stop the demo unless every record was accepted."""
    summary = run_post(parse_args(["post", "--url", api_url, "--count", str(triples), "--seed", str(seed)]))
    refused = refusals(summary)
    if refused:
        raise SystemExit(f"the API did not accept every live record: {refused}; see .stack/logs/api.log")


def run_days(client: AirflowClient, first: date, last: date) -> None:
    """Backfill ``first..last`` and wait for every run of those days, whoever created it (backfill or schedule)."""
    # one day at a time: the analytics of a day read the clean partitions of the days before it
    client.wait_for_backfill(client.backfill(DAG_ID, _midnight(first), _midnight(last), max_active_runs=1))
    wanted = {first + timedelta(days=i) for i in range((last - first).days + 1)}
    runs = client.wait_for_runs_of_days(DAG_ID, wanted)
    for run in runs:
        console.print(f"  run {run['dag_run_id']} ({run['run_type']}): {run['state']}")


def first_day_to_backfill(s3, bucket: str, seeded_from: date) -> date:
    """The first day the backfill must run: ``seeded_from``, or an earlier day the lake does not have ready.

    The analytics of a day need every day since the lake's first drained one drained complete and cleaned from
    the raw data it holds now, so a lake left by an earlier run gets the days in between (re)done too: never
    drained, still partial, or cleaned before clean partitions named their raw data.
    """
    days: set[date] = set()
    for entity in ENTITIES:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=lake.dataset_prefix("raw", entity), Delimiter="/"
        )
        prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
        days |= {date.fromisoformat(p.rstrip("/").split("dt=")[1]) for p in prefixes if "dt=" in p}
    day = min(days, default=seeded_from)
    while day < seeded_from:
        if not all(_day_ready(s3, bucket, entity, day) for entity in ENTITIES):
            return day
        day += timedelta(days=1)
    return seeded_from


def _day_ready(s3, bucket: str, entity: str, day: date) -> bool:
    """Whether an entity's day is drained complete (or accepted as final) and cleaned from that raw data."""
    raw = _text(s3, bucket, lake.manifest_key(entity, day))
    source = _text(s3, bucket, lake.partition_prefix("clean", entity, day) + lake.SOURCE_NAME)
    if raw is None or source is None:
        return False
    manifest = parse_manifest(raw, lake.partition_prefix("raw", entity, day))
    return (manifest.status == "complete" or manifest.accepted_partial) and cleaned_from(source, manifest)


def _text(s3, bucket: str, key: str) -> str | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        return None


def show_raw(s3, bucket: str, days: list[date]) -> None:
    table = Table(title=f"raw partitions in s3://{bucket}/raw/ (from _manifest.json)")
    for column in ("dt", *ENTITIES, "status"):
        table.add_column(column, justify="right" if column in ENTITIES else "left")
    for day in days:
        manifests = [json.loads(s3.get_object(Bucket=bucket, Key=lake.manifest_key(e, day))["Body"].read())
                     for e in ENTITIES]  # fmt: skip
        counts = [str(sum(f["count"] for f in m["files"])) for m in manifests]
        table.add_row(day.isoformat(), *counts, "/".join(sorted({m["status"] for m in manifests})))
    console.print(table)


def show_analytics(s3, bucket: str, day: date, max_rows: int = 12) -> None:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=lake.zone_prefix("analytics"), Delimiter="/")
    names = sorted(p["Prefix"].split("/")[1] for p in listing.get("CommonPrefixes", []))
    if not names:
        raise SystemExit(f"no analytics found under s3://{bucket}/analytics/")
    for name in names:
        prefix = lake.partition_prefix("analytics", name, day)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
                if o["Key"].endswith(".parquet")]  # fmt: skip
        rows = []
        for key in keys:
            body = io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            rows += pq.read_table(body, use_threads=False).to_pylist()
        table = Table(title=f"{name} as of {day}  (s3://{bucket}/{prefix}, {len(rows)} rows)")
        for column in rows[0] if rows else ["(empty)"]:
            table.add_column(column)
        rows.sort(key=lambda row: tuple(str(v) for v in row.values()))
        for row in rows[:max_rows]:
            table.add_row(*(f"{v:,.1f}" if isinstance(v, float) else str(v) for v in row.values()))
        console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--history-days", type=int, default=3, help="past days seeded and backfilled")
    parser.add_argument("--per-day", type=int, default=400, help="triples seeded per past day")
    parser.add_argument("--live", type=int, default=300, help="triples posted through the API today")
    parser.add_argument(
        "--seed",
        type=int,
        default=int(time.time()) % 100_000,
        help="emulator seed (default: new each run, so a rerun adds new records instead of repeating them)",
    )
    args = parser.parse_args(argv)

    env = read_env_file(paths.STACK_ENV_FILE)
    if not env:
        raise SystemExit("the local stack is not set up: run `make up` first")
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=args.history_days), today - timedelta(days=1)

    console.rule(f"1/5 seeding {first}..{last} straight into Kafka (historical record timestamps)")
    emulator(["seed-kafka", "--from", first.isoformat(), "--to", last.isoformat(),
              "--per-day", str(args.per_day), "--seed", str(args.seed)])  # fmt: skip

    console.rule(f"2/5 posting {args.live} live pin/geo/user triples to the API at {env['API_URL']}")
    post_live(env["API_URL"], args.live, args.seed + 1)

    client = AirflowClient.from_env(env)
    client.wait_for_dag(DAG_ID)
    client.unpause(DAG_ID)
    s3 = PlatformSettings.model_validate(env).s3_client()
    start = first_day_to_backfill(s3, env["LAKE_BUCKET"], first)
    if start < first:
        console.print(
            f"  the lake is not ready from {start} on (days not drained complete or not cleaned): redoing them"
        )
    console.rule(f"3/5 backfilling {start}..{last} with {DAG_ID} (drain, quality gate, Spark clean + analytics)")
    run_days(client, start, last)

    console.rule(f"4/5 running today's interval [{today}, {today + timedelta(days=1)}) as a manual run (partial)")
    run_id = client.trigger(DAG_ID, _midnight(today), _midnight(today + timedelta(days=1)))
    client.wait_for_run(DAG_ID, run_id)
    console.print(f"  run {run_id}: success")

    console.rule("5/5 results")
    days = [first + timedelta(days=i) for i in range(args.history_days + 1)]
    show_raw(s3, env["LAKE_BUCKET"], days)
    show_analytics(s3, env["LAKE_BUCKET"], today)
    console.print(f"Airflow UI: {env['AIRFLOW_API_URL']} (user {env['AIRFLOW_USERNAME']}, password in "
                  f"{paths.AIRFLOW_HOME / 'passwords.json'}); MinIO console: http://127.0.0.1:9001")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
