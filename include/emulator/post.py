"""Post generated triples to the ingest API, one record per request, at a rate or as fast as possible."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx

from include.emulator.generate import Triple
from include.records import ENTITIES

ProgressHook = Callable[[int], None]


@dataclass
class PostSummary:
    """What happened to the posted records: 2xx accepted, 4xx rejected, 5xx or no answer errors."""

    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)

    def count(self, status: str) -> None:
        """Count one answer: an HTTP status code, or the name of a transport error."""
        self.sent += 1
        self.statuses[status] += 1
        if status.startswith("2"):
            self.accepted += 1
        elif status.startswith("4"):
            self.rejected += 1
        else:
            self.errors += 1


async def _post_triple(client: httpx.AsyncClient, triple: Triple, summary: PostSummary) -> None:
    for entity in ENTITIES:
        body = triple.record(entity).model_dump_json(exclude_none=True)
        try:
            response = await client.post(f"/{entity}/", content=body, headers={"content-type": "application/json"})
        except httpx.HTTPError as error:
            summary.count(type(error).__name__)
        else:
            summary.count(str(response.status_code))


async def post_triples(
    base_url: str,
    triples: Iterator[Triple],
    *,
    rate: float | None = None,
    duration_s: float | None = None,
    concurrency: int = 16,
    api_key: str | None = None,
    on_posted: ProgressHook | None = None,
) -> PostSummary:
    """Post every triple of ``triples`` (pin, then geo, then user) until it ends or ``duration_s`` passes.

    ``rate`` limits the pace in triples per second (None: as fast as ``concurrency``
    connections go). ``on_posted`` is called with the number of records answered.
    """
    summary = PostSummary()
    headers = {"x-api-key": api_key} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    started = time.monotonic()
    deadline = None if duration_s is None else started + duration_s
    lock = asyncio.Lock()
    issued = 0

    async def next_triple() -> Triple | None:
        nonlocal issued
        async with lock:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            if rate is not None:
                await asyncio.sleep(max(0.0, started + issued / rate - time.monotonic()))
            triple = next(triples, None)
            issued += triple is not None
            return triple

    async def worker(client: httpx.AsyncClient) -> None:
        while (triple := await next_triple()) is not None:
            await _post_triple(client, triple, summary)
            if on_posted is not None:
                on_posted(len(ENTITIES))

    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=30.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    summary.elapsed_s = time.monotonic() - started
    return summary
