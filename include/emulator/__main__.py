"""The emulator CLI: ``python -m include.emulator post ...`` and ``python -m include.emulator seed-kafka ...``."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from include.days import days_between
from include.emulator.generate import IND_STRIDE, MAX_SEED, generate_triples
from include.emulator.post import ApiUnreachableError, PostSummary, check_api, post_triples, rate_shortfall
from include.emulator.seed import FIRST_DAY, SeedError, SeedReport, check_kafka, check_retention, seed_kafka
from include.records import ENTITIES
from include.settings import PlatformSettings
from include.topics import check_topic_prefix

console = Console(stderr=True)
INTERRUPTED = 130
"""The exit code after Ctrl-C (128 + SIGINT), as shells report it."""


def _progress(unit: str) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=console,
    )


def _topic_prefix(text: str) -> str:
    """A --topic-prefix Kafka accepts, as PINTEREST_TOPIC_PREFIX must be."""
    try:
        return check_topic_prefix(text, "--topic-prefix")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _number(text: str, parse: Callable[[str], float], fits: Callable[[float], bool], expected: str) -> Any:
    """``text`` parsed, when it parses and ``fits``; else the argparse error saying what was ``expected``."""
    try:
        value = parse(text)
    except ValueError:
        value = None
    if value is None or not fits(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return _number(text, int, lambda v: v >= 1, "a whole number of at least 1")


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a number above 0")


def percent(text: str) -> float:
    """An argparse type: a number from 0 to 100."""
    return _number(text, float, lambda v: 0 <= v <= 100, "a percentage from 0 to 100")


def seed_number(text: str, top: int = MAX_SEED) -> int:
    """An argparse type: a seed from 0 to ``top``, at most MAX_SEED (larger ones would give ``ind`` values past a
    record id's limit)."""
    return _number(text, int, lambda v: 0 <= v <= top, f"a whole number from 0 to {top}")


def fresh_seed() -> int:
    """A seed drawn anew for each run, so separate runs send different records."""
    return secrets.randbelow(MAX_SEED + 1)


SEED_HELP = (
    "the same seed sends the same records again, which the analytics count once "
    "(default: a new seed each run, printed so the run can be repeated)"
)


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except None (whose help says what happens without the option)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m include.emulator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = _DefaultsFormatter

    post = commands.add_parser(
        "post", help="post generated triples to the ingest API (key from API_KEY)", formatter_class=defaults
    )
    post.add_argument("--url", default=os.environ.get("API_URL", "http://127.0.0.1:8000"), help="API base URL")
    post.add_argument("--seed", type=seed_number, default=None, help=SEED_HELP)
    limit = post.add_mutually_exclusive_group()
    limit.add_argument("--count", type=positive_int, help="number of triples to post (without --duration: 100)")
    limit.add_argument("--duration", type=positive_float, help="post for this many seconds")
    post.add_argument(
        "--rate", type=positive_float, help="triples per second (3 records each; without it: as fast as possible)"
    )
    post.add_argument("--concurrency", type=positive_int, default=16, help="parallel connections")
    post.add_argument("--repeat-percent", type=percent, default=3.0, help="share of exact repeats")

    seed = commands.add_parser(
        "seed-kafka", help="write triples straight to Kafka with past record timestamps", formatter_class=defaults
    )
    seed.add_argument("--from", dest="first_day", type=date.fromisoformat, required=True, help="first UTC day")
    seed.add_argument("--to", dest="last_day", type=date.fromisoformat, required=True, help="last UTC day (included)")
    seed.add_argument("--per-day", type=positive_int, required=True, help="triples per day")
    seed.add_argument("--seed", type=seed_number, default=None, help=SEED_HELP)
    seed.add_argument("--topic-prefix", type=_topic_prefix, help="topic prefix (without it: PINTEREST_TOPIC_PREFIX)")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = fresh_seed()
    if args.command == "post" and args.count is None and args.duration is None:
        args.count = 100
    if args.command == "post" and args.count is not None and args.count > IND_STRIDE:
        parser.error(f"--count {args.count} is more than one seed's {IND_STRIDE} triples")
    if args.command == "seed-kafka":
        today = datetime.now(UTC).date()
        if args.last_day >= today:
            parser.error(f"--to {args.last_day} must be a past day (before {today} UTC)")
        if args.first_day > args.last_day:
            parser.error(f"--from {args.first_day} is after --to {args.last_day}")
        if args.first_day < FIRST_DAY:
            parser.error(f"--from {args.first_day} is before {FIRST_DAY}: Kafka record timestamps cannot be earlier")
        if len(days_between(args.first_day, args.last_day)) * args.per_day > IND_STRIDE:
            parser.error(f"--per-day times the days is more than one seed's {IND_STRIDE} triples")
    return args


def fail(message: str) -> NoReturn:
    """Print ``message`` as one red line on stderr (no markup, no wrapping) and exit with code 1."""
    console.print(message, style="red", markup=False, soft_wrap=True)
    raise SystemExit(1)


def say(message: str, style: str | None = None) -> None:
    """Print ``message`` as one line on stderr (no markup, no wrapping)."""
    console.print(message, style=style, markup=False, soft_wrap=True)


async def _post_until_interrupted(
    args: argparse.Namespace, on_posted: Callable[[int], None]
) -> tuple[PostSummary, bool]:
    """Post as ``args`` say; the first Ctrl-C starts no new triple and lets those in flight finish.

    Returns the summary and whether Ctrl-C stopped it.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    say(f"posting with --seed {args.seed} (the same seed posts the same records again)")
    try:
        summary = await post_triples(
            args.url,
            generate_triples(args.seed, args.count, args.repeat_percent),
            rate=args.rate,
            duration_s=args.duration,
            concurrency=args.concurrency,
            api_key=os.environ.get("API_KEY") or None,
            on_posted=on_posted,
            stop=stop,
        )
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    return summary, stop.is_set()


def run_post(args: argparse.Namespace) -> PostSummary:
    """Check the API, post, print the summary; SystemExit(1) when posting stopped for an error, 130 after Ctrl-C."""
    try:
        check_api(args.url)
    except ApiUnreachableError as error:
        fail(str(error))
    with _progress("triples") as progress:
        task = progress.add_task(f"posting to {args.url}", total=args.count)
        summary, interrupted = asyncio.run(_post_until_interrupted(args, lambda n: progress.advance(task, n)))
    table = Table(title=f"posted records (--seed {args.seed})")
    for column in ("sent", "accepted", "rejected", "errors", "unanswered", "retries"):
        table.add_column(column, justify="right")
    counts = (summary.sent, summary.accepted, summary.rejected, summary.errors, summary.unanswered, summary.retries)
    table.add_row(*(str(v) for v in counts))
    Console().print(table)
    Console().print(
        f"{summary.triples} triples in {summary.elapsed_s:.1f} s: {summary.triples_per_s:.1f} triples/s "
        f"({summary.whole} with all three records accepted)",
        markup=False,
        soft_wrap=True,
    )
    if summary.statuses:
        Console().print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(summary.statuses.items())))
    if summary.stopped:
        fail(summary.stopped)
    if interrupted:
        say(f"interrupted after {summary.triples} triples (seed {args.seed})", style="yellow")
        raise SystemExit(INTERRUPTED)
    if shortfall := rate_shortfall(args.rate, summary.triples_per_s):
        say(shortfall, style="yellow")
    return summary


def refusals(summary: PostSummary) -> str | None:
    """How many records were not accepted and the answers they got instead; None when every one was."""
    attempted = summary.sent + summary.unanswered
    if summary.accepted == attempted:
        return None
    answers = ", ".join(f"{answer}: {n}" for answer, n in sorted(summary.statuses.items()) if answer[0] != "2")
    return f"{attempted - summary.accepted} of {attempted} records were not accepted ({answers})"


def run_seed(args: argparse.Namespace) -> SeedReport:
    settings = PlatformSettings()
    if args.topic_prefix:
        settings = settings.model_copy(update={"topic_prefix": args.topic_prefix})
    try:
        return seed_with_progress(settings, args.first_day, args.last_day, args.per_day, args.seed)
    except SeedError as error:
        fail(str(error))


@contextmanager
def _sigint_flag() -> Iterator[list[bool]]:
    """For the block, Ctrl-C appends to the yielded list instead of raising KeyboardInterrupt (main thread only)."""
    pressed: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return
    previous = signal.signal(signal.SIGINT, lambda *_: pressed.append(True))
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def seed_with_progress(settings: PlatformSettings, first: date, last: date, per_day: int, seed: int) -> SeedReport:
    """Seed ``first..last`` into the Kafka of ``settings`` with a progress bar, then print the records per day.

    Raises SeedError when Kafka or a topic is not there, or a topic's retention would delete the first day (checked
    before anything is sent). After Ctrl-C it sends no more, prints what Kafka acknowledged and raises
    SystemExit(130).
    """
    with _sigint_flag() as pressed:
        check_kafka(settings)  # before the progress bar, so a failure is the only output
        check_retention(settings, first)
        say(f"seeding with --seed {seed} (the same seed writes the same records again)")
        with _progress("records") as progress:
            task = progress.add_task("seeding Kafka", total=len(days_between(first, last)) * per_day * len(ENTITIES))
            report = seed_kafka(
                first,
                last,
                per_day,
                seed=seed,
                settings=settings,
                on_sent=lambda n: progress.advance(task, n),
                should_stop=lambda: bool(pressed),
            )
    table = Table(title=f"records per day in {settings.topic_prefix}.* (--seed {seed})")
    table.add_column("day")
    for entity in ENTITIES:
        table.add_column(entity, justify="right")
    for day, per_entity in report.counts.items():
        table.add_row(day.isoformat(), *(str(per_entity[entity]) for entity in ENTITIES))
    Console().print(table)
    if report.interrupted:
        say(f"interrupted: Kafka acknowledged {report.total} records (seed {seed})", style="yellow")
        raise SystemExit(INTERRUPTED)
    return report


def main(argv: list[str] | None = None) -> int:
    """Run one command; 0 when it fully succeeded, else one line on stderr and SystemExit(1) (which stops a caller
    such as the demo too)."""
    args = parse_args(argv)
    try:
        if args.command == "post":
            refused = refusals(run_post(args))
            if refused:
                fail(refused)
            return 0
        run_seed(args)
    except KeyboardInterrupt:  # Ctrl-C during a check, before anything was sent
        say("interrupted before anything was sent", style="yellow")
        raise SystemExit(INTERRUPTED) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
