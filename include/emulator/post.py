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
"""How long the check before posting waits for the API's /health and /ready."""
REQUEST_TIMEOUT_S = 30.0
BACKOFF_S = 0.25
"""The wait before the first retry after a failed connection; it doubles up to BACKOFF_MAX_S."""
BACKOFF_MAX_S = 2.0
RETRY_AFTER_MAX_S = 30.0
"""A 503's Retry-After is obeyed up to this many seconds."""
GIVE_UP_AFTER_S = 10.0
"""Posting stops when the API took no record for this long: no connection to it opened, or it answered 503. A record
is retried after a 503 or a failed connection until then, or for this long while other records got through: a shorter
outage delays records instead of dropping them."""
NO_CONNECTION = "no connection"
UNAVAILABLE = "503"
UNAUTHORIZED_NO_KEY = "the API requires X-API-Key: set API_KEY"
UNAUTHORIZED_WRONG_KEY = "the API refused the X-API-Key sent from API_KEY: set API_KEY to the API's key"


class ApiUnreachableError(Exception):
    """Nothing answers at the API URL, what answers is not the ingest API, or it is not ready for records."""


@dataclass
class PostSummary:
    """What happened to the posted records.

    ``sent`` counts records the API answered (2xx accepted, 4xx rejected, 5xx errors); ``unanswered`` those
    given up without an answer; ``triples`` the triples whose three records were posted, ``whole`` those of them
    whose three records were all accepted. ``stopped`` says why posting stopped early (the API went away, cannot
    reach Kafka, or wants a key).
    """

    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: int = 0
    unanswered: int = 0
    retries: int = 0
    triples: int = 0
    whole: int = 0
    elapsed_s: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None

    def count(self, status: str) -> None:
        """Count one record's final answer: an HTTP status code."""
        self.sent += 1
        self.statuses[status] += 1
        if status.startswith("2"):
            self.accepted += 1
        elif status.startswith("4"):
            self.rejected += 1
        else:
            self.errors += 1

    def count_unanswered(self, error: str) -> None:
        """Count one record given up without an answer (``error``: the transport error's name)."""
        self.unanswered += 1
        self.statuses[error] += 1

    @property
    def triples_per_s(self) -> float:
        return self.triples / self.elapsed_s if self.elapsed_s else 0.0


def check_api(base_url: str) -> None:
    """Raise ApiUnreachableError unless ``<base_url>/health`` and ``/ready`` answer 200 within CHECK_TIMEOUT_S."""
    base = base_url.rstrip("/")
    try:
        health = httpx.get(f"{base}/health", timeout=CHECK_TIMEOUT_S)
        ready = httpx.get(f"{base}/ready", timeout=CHECK_TIMEOUT_S) if health.status_code == 200 else None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise ApiUnreachableError(
            f"the API does not answer at {base_url} ({type(error).__name__}: {error}); "
            "start the local stack with `make up`, or give the right --url (or API_URL; the demo takes the stack's)"
        ) from error
    if ready is None:
        raise ApiUnreachableError(
            f"GET {base}/health answered {health.status_code}, not 200: is {base_url} the ingest API?"
        )
    if ready.status_code != 200:
        raise ApiUnreachableError(
            f"the API at {base_url} is not ready for records ({ready_detail(ready)}); "
            "fix that (see its /ready) and post again"
        )


def ready_detail(response: httpx.Response) -> str:
    """The ``detail`` of a /ready answer, else its status and text."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    return str(detail) if detail else f"GET /ready answered {response.status_code}: {response.text[:200]}"


def retry_after_s(response: httpx.Response) -> float:
    """The seconds a 503 asks to wait (its Retry-After; 1 when missing or not a number), at most RETRY_AFTER_MAX_S."""
    try:
        wait = float(response.headers.get("retry-after", "1"))
    except ValueError:
        wait = 1.0
    return min(max(wait, 0.0), RETRY_AFTER_MAX_S)


def backoff_s(retry: int) -> float:
    """The wait before retry number ``retry`` (0-based) after a failed connection."""
    return min(BACKOFF_S * 2**retry, BACKOFF_MAX_S)


def give_up_reason(base_url: str, lasted_s: float, kinds: set[str], last: str) -> str:
    """Why posting stopped: the API took no record for ``lasted_s``, failing with ``kinds`` (NO_CONNECTION,
    UNAVAILABLE), the last time with ``last``."""
    if kinds == {NO_CONNECTION}:
        return (
            f"the API at {base_url} stopped answering: no connection for {lasted_s:.0f} s ({last}); "
            "check that it runs (`make up`) and post again"
        )
    if kinds == {UNAVAILABLE}:
        return (
            f"the API at {base_url} answered only 503 for {lasted_s:.0f} s: it cannot pass records to Kafka "
            "(see its /ready); post again once it is ready"
        )
    return (
        f"the API at {base_url} took no record for {lasted_s:.0f} s: no connection opened or it answered 503 "
        f"(last: {last}); check that it runs (`make up`) and is ready (see its /ready), then post again"
    )


def rate_shortfall(rate: float | None, triples_per_s: float) -> str | None:
    """A warning when the reached pace is below 95 % of ``rate`` (both in triples per second), else None."""
    if rate is None or triples_per_s >= 0.95 * rate:
        return None
    return f"rate {rate:.10g} triples/s not reached: {triples_per_s:.1f} triples/s"


@dataclass
class _Streak:
    """Failed requests without a break: since when, and of which kinds."""

    since: float | None = None
    kinds: set[str] = field(default_factory=set)

    def extend(self, now: float, kind: str) -> float:
        """Count one more failure of ``kind`` at ``now``; the seconds since the streak's first."""
        if self.since is None:
            self.since = now
        self.kinds.add(kind)
        return now - self.since

    def end(self) -> None:
        self.since = None
        self.kinds.clear()


class _Poster:
    """Posts records with retries, and tracks when the API stopped answering or taking records."""

    def __init__(self, base_url: str, api_key: str | None, summary: PostSummary, halted: Callable[[], bool]) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.summary = summary
        self.halted = halted  # Ctrl-C or a stop: records in flight get no more retries
        self.failing = _Streak()  # since the API last took (or answered other than 503) a record

    def stop(self, reason: str) -> None:
        if self.summary.stopped is None:
            self.summary.stopped = reason

    def retry(self, record: _Streak, kind: str, last: str) -> bool:
        """Count a failed request of ``record`` (``kind``: NO_CONNECTION or UNAVAILABLE; ``last``: what failed) and
        stop once the API has taken no record for GIVE_UP_AFTER_S; whether to retry the record: not once posting is
        halted, nor once its own failures have lasted GIVE_UP_AFTER_S (others got through meanwhile)."""
        now = time.monotonic()
        if (lasted := self.failing.extend(now, kind)) >= GIVE_UP_AFTER_S:
            self.stop(give_up_reason(self.base_url, lasted, self.failing.kinds, last))
        if self.halted() or record.extend(now, kind) >= GIVE_UP_AFTER_S:
            return False
        self.summary.retries += 1
        return True

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less once posting is halted."""
        end = time.monotonic() + seconds
        while not self.halted() and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.1))

    async def post_record(self, client: httpx.AsyncClient, entity: str, body: str) -> bool:
        """Post one record; whether the API accepted it.

        A 503 is retried after its Retry-After and a failed connection (nothing was sent) after a backoff, as long
        as ``retry`` says (once more at most after posting is halted); a request that may have arrived is not.
        """
        failing = _Streak()
        retries = 0
        while True:
            try:
                response = await client.post(f"/{entity}/", content=body, headers={"content-type": "application/json"})
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:  # nothing was sent: safe to retry
                if not self.retry(failing, NO_CONNECTION, f"{type(error).__name__}: {error}"):
                    self.summary.count_unanswered(type(error).__name__)
                    return False
                await self.pause(backoff_s(retries))
            except httpx.HTTPError as error:  # the record may have arrived: not retried
                self.summary.count_unanswered(type(error).__name__)
                return False
            else:
                if response.status_code != 503:
                    self.failing.end()
                    if response.status_code == 401:
                        self.stop(UNAUTHORIZED_WRONG_KEY if self.api_key else UNAUTHORIZED_NO_KEY)
                    self.summary.count(str(response.status_code))
                    return response.is_success
                if not self.retry(failing, UNAVAILABLE, UNAVAILABLE):
                    self.summary.count(UNAVAILABLE)
                    return False
                await self.pause(retry_after_s(response))
            retries += 1

    async def post_triple(self, client: httpx.AsyncClient, triple: Triple) -> None:
        """Post the triple's pin, geo and user record; skip the rest once posting stopped for an error."""
        accepted = 0
        for entity in ENTITIES:
            if self.summary.stopped is not None:
                return
            accepted += await self.post_record(client, entity, triple.record(entity).model_dump_json(exclude_none=True))
        self.summary.triples += 1
        self.summary.whole += accepted == len(ENTITIES)


async def post_triples(
    base_url: str,
    triples: Iterator[Triple],
    *,
    rate: float | None = None,
    duration_s: float | None = None,
    concurrency: int = 16,
    api_key: str | None = None,
    on_posted: ProgressHook | None = None,
    stop: asyncio.Event | None = None,
) -> PostSummary:
    """Post every triple of ``triples`` (pin, then geo, then user) until it ends or ``duration_s`` passes.

    ``rate`` limits the pace in triples per second (None: as fast as ``concurrency`` workers go, each with its
    own connection). ``on_posted`` is called with 1 for each finished triple. Once ``stop`` is set no new triple
    starts, and the ones in flight finish without further retries. Posting also stops (``PostSummary.stopped``
    says why) on a 401, or when the API took no record for GIVE_UP_AFTER_S (no connection opened, or it answered
    503); records in flight wait out a shorter outage.
    """
    summary = PostSummary()
    headers = {"x-api-key": api_key} if api_key else {}
    started = time.monotonic()
    deadline = None if duration_s is None else started + duration_s
    lock = asyncio.Lock()
    issued = 0

    def halted() -> bool:
        return summary.stopped is not None or (stop is not None and stop.is_set())

    def over() -> bool:
        return halted() or (deadline is not None and time.monotonic() >= deadline)

    poster = _Poster(base_url, api_key, summary, halted)

    async def next_triple() -> Triple | None:
        nonlocal issued
        async with lock:
            if rate is not None:
                due = started + issued / rate
                while not over() and (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(min(wait, 0.1))
            if over():
                return None
            triple = next(triples, None)
            issued += triple is not None
            return triple

    async def worker() -> None:
        # One client with one connection per worker: a shared pool of many connections is slow to assign
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT_S
        ) as client:
            while (triple := await next_triple()) is not None:
                await poster.post_triple(client, triple)
                if on_posted is not None:
                    on_posted(1)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    summary.elapsed_s = time.monotonic() - started
    return summary
