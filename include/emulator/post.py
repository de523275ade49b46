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
CHECK_TIMEOUT_S = 5.0
"""How long the check before posting waits for the API's /health."""


class ApiUnreachableError(Exception):
    """Nothing answers at the API URL, or what answers is not the ingest API."""


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


def check_api(base_url: str) -> None:
    """Raise ApiUnreachableError unless ``GET <base_url>/health`` answers 200 within CHECK_TIMEOUT_S."""
    url = f"{base_url.rstrip('/')}/health"
    try:
        response = httpx.get(url, timeout=CHECK_TIMEOUT_S)
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise ApiUnreachableError(
            f"the API does not answer at {base_url} ({type(error).__name__}: {error}); "
            "start the local stack with `make up`, or give the right --url (or API_URL)"
        ) from error
    if response.status_code != 200:
        raise ApiUnreachableError(f"GET {url} answered {response.status_code}, not 200: is {base_url} the ingest API?")


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
