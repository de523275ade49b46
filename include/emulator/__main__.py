"""The emulator CLI: ``python -m include.emulator post ...`` and ``python -m include.emulator seed-kafka ...``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, date, datetime
from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from include.days import days_between
from include.emulator.generate import generate_triples
from include.emulator.post import ApiUnreachableError, PostSummary, check_api, post_triples
from include.emulator.seed import SeedError, SeedReport, check_kafka, seed_kafka
from include.records import ENTITIES
from include.settings import PlatformSettings
from include.topics import check_topic_prefix

console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def _topic_prefix(text: str) -> str:
    """A --topic-prefix Kafka accepts, as PINTEREST_TOPIC_PREFIX must be."""
    try:
        return check_topic_prefix(text, "--topic-prefix")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m include.emulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    post = commands.add_parser("post", help="post generated triples to the ingest API (key from API_KEY)")
    post.add_argument("--url", default=os.environ.get("API_URL", "http://127.0.0.1:8000"), help="API base URL")
    post.add_argument("--seed", type=int, default=0)
    limit = post.add_mutually_exclusive_group()
    limit.add_argument("--count", type=int, help="number of triples to post (default 100)")
    limit.add_argument("--duration", type=float, help="post for this many seconds")
    post.add_argument("--rate", type=float, help="triples per second (default: as fast as possible)")
    post.add_argument("--concurrency", type=int, default=16, help="parallel connections")
    post.add_argument("--repeat-percent", type=float, default=3.0, help="share of exact repeats")

    seed = commands.add_parser("seed-kafka", help="write triples straight to Kafka with past record timestamps")
    seed.add_argument("--from", dest="first_day", type=date.fromisoformat, required=True, help="first UTC day")
    seed.add_argument("--to", dest="last_day", type=date.fromisoformat, required=True, help="last UTC day (included)")
    seed.add_argument("--per-day", type=int, required=True, help="triples per day")
    seed.add_argument("--seed", type=int, default=0)
    seed.add_argument("--topic-prefix", type=_topic_prefix, help="topic prefix (default PINTEREST_TOPIC_PREFIX)")
    args = parser.parse_args(argv)
    if args.command == "post" and args.count is None and args.duration is None:
        args.count = 100
    if args.command == "seed-kafka":
        today = datetime.now(UTC).date()
        if args.last_day >= today:
            parser.error(f"--to {args.last_day} must be a past day (before {today} UTC)")
        if args.first_day > args.last_day:
            parser.error(f"--from {args.first_day} is after --to {args.last_day}")
        if args.per_day < 1:
            parser.error("--per-day must be at least 1")
    return args


def fail(message: str) -> NoReturn:
    """Print ``message`` as one red line on stderr (no markup, no wrapping) and exit with code 1."""
    console.print(message, style="red", markup=False, soft_wrap=True)
    raise SystemExit(1)


def run_post(args: argparse.Namespace) -> PostSummary:
    try:
        check_api(args.url)
    except ApiUnreachableError as error:
        fail(str(error))
    triples = generate_triples(args.seed, args.count, args.repeat_percent)
    total = None if args.count is None else args.count * len(ENTITIES)
    with _progress() as progress:
        task = progress.add_task(f"posting to {args.url}", total=total)
        summary = asyncio.run(
            post_triples(
                args.url,
                triples,
                rate=args.rate,
                duration_s=args.duration,
                concurrency=args.concurrency,
                api_key=os.environ.get("API_KEY") or None,
                on_posted=lambda n: progress.advance(task, n),
            )
        )
    table = Table(title="posted records")
    for column in ("sent", "accepted", "rejected", "errors", "seconds", "records/s"):
        table.add_column(column, justify="right")
    per_s = summary.sent / summary.elapsed_s if summary.elapsed_s else 0.0
    table.add_row(*(str(v) for v in (summary.sent, summary.accepted, summary.rejected, summary.errors)),
                  f"{summary.elapsed_s:.1f}", f"{per_s:.0f}")  # fmt: skip
    Console().print(table)
    if summary.statuses:
        Console().print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(summary.statuses.items())))
    return summary


def refusals(summary: PostSummary) -> str | None:
    """How many records were not accepted and the answers they got instead; None when every one was."""
    if summary.accepted == summary.sent:
        return None
    answers = ", ".join(f"{answer}: {n}" for answer, n in sorted(summary.statuses.items()) if answer[0] != "2")
    return f"{summary.sent - summary.accepted} of {summary.sent} records were not accepted ({answers})"


def run_seed(args: argparse.Namespace) -> SeedReport:
    settings = PlatformSettings()
    if args.topic_prefix:
        settings = settings.model_copy(update={"topic_prefix": args.topic_prefix})
    try:
        return seed_with_progress(settings, args.first_day, args.last_day, args.per_day, args.seed)
    except SeedError as error:
        fail(str(error))


def seed_with_progress(settings: PlatformSettings, first: date, last: date, per_day: int, seed: int) -> SeedReport:
    """Seed ``first..last`` into the Kafka of ``settings`` with a progress bar, then print the records per day.

    Raises SeedError when Kafka or a topic is not there (checked before anything is sent).
    """
    check_kafka(settings)  # before the progress bar, so a failure is the only output
    with _progress() as progress:
        task = progress.add_task("seeding Kafka", total=len(days_between(first, last)) * per_day * len(ENTITIES))
        report = seed_kafka(
            first, last, per_day, seed=seed, settings=settings, on_sent=lambda n: progress.advance(task, n)
        )
    table = Table(title=f"records per day in {settings.topic_prefix}.*")
    table.add_column("day")
    for entity in ENTITIES:
        table.add_column(entity, justify="right")
    for day, per_entity in report.counts.items():
        table.add_row(day.isoformat(), *(str(per_entity[entity]) for entity in ENTITIES))
    Console().print(table)
    return report


def main(argv: list[str] | None = None) -> int:
    """Run one command; 0 when it fully succeeded, else one line on stderr and SystemExit(1) (which stops a caller
    such as the demo too)."""
    args = parse_args(argv)
    if args.command == "post":
        refused = refusals(run_post(args))
        if refused:
            fail(refused)
        return 0
    run_seed(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
