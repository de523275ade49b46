"""`post` rides out an outage of the API shorter than its give-up window and stops within it otherwise.

A fake API (an httpx.MockTransport) stands in for the ingest API and counts what it took; its outage starts a set
time after the first record it sees.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

import include.emulator.__main__ as emulator_cli
from include.emulator.post import BACKOFF_MAX_S, GIVE_UP_AFTER_S
from include.records import ENTITIES

pytestmark = pytest.mark.slow

Failure = Callable[[httpx.Request, float], httpx.Response]
"""The fake API's answer during its outage, given the request and the seconds since the first record."""


def refused(request: httpx.Request, _seconds: float) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def unavailable(_request: httpx.Request, _seconds: float) -> httpx.Response:
    return httpx.Response(503, headers={"retry-after": "2"}, json={"detail": "Kafka is unavailable"})


def refused_then_unavailable(request: httpx.Request, seconds: float) -> httpx.Response:
    """A restart: no connection until 7 s, then 503 while it cannot reach Kafka."""
    return (refused if seconds < 7.0 else unavailable)(request, seconds)


class FakeApi:
    """Answers 201 to every record except during the outage (``outage_s``: from, to, in seconds after the first
    record), when ``failure`` answers; keeps the records it took and the bodies that failed."""

    def __init__(self, outage_s: tuple[float, float], failure: Failure) -> None:
        self.outage_s = outage_s
        self.failure = failure
        self.first: float | None = None
        self.taken: dict[str, Counter[int]] = {entity: Counter() for entity in ENTITIES}
        self.failed: set[bytes] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = time.monotonic()
        self.first = self.first or now
        if self.outage_s[0] <= now - self.first < self.outage_s[1]:
            self.failed.add(request.content)
            return self.failure(request, now - self.first)
        entity = request.url.path.strip("/")
        record = json.loads(request.content)
        self.taken[entity][record["index" if entity == "pin" else "ind"]] += 1
        return httpx.Response(201, json={})

    def whole_triples(self) -> int:
        """The triples taken whole; fails unless every record taken belongs to a whole triple."""
        assert self.taken["pin"] == self.taken["geo"] == self.taken["user"], self.taken
        return self.taken["pin"].total()


def post(api: Callable[[httpx.Request], httpx.Response], monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run `python -m include.emulator post` in this process against ``api``; its exit status."""
    monkeypatch.setattr(httpx, "AsyncClient", functools.partial(httpx.AsyncClient, transport=httpx.MockTransport(api)))
    monkeypatch.setattr(emulator_cli, "check_api", lambda _url: None)
    argv = ["post", "--url", "http://api.test", "--seed", "7", "--repeat-percent", "0", *args]
    try:
        return emulator_cli.main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.parametrize(
    ("failure", "outage_s"),
    [(refused, (1.0, 6.0)), (unavailable, (1.0, 10.0))],
    ids=["5 s of refused connections", "9 s of 503 with Retry-After 2"],
)
def test_an_outage_shorter_than_the_give_up_window_delays_records_and_every_triple_arrives_whole(
    failure: Failure, outage_s: tuple[float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records were given up after 5 requests (3.75 s refused, 8 s of 503) while posting went on: half triples."""
    api = FakeApi(outage_s, failure)
    status = post(api, monkeypatch, "--count", "30", "--rate", "5", "--concurrency", "4")
    assert api.failed  # the outage happened mid-run
    assert api.whole_triples() == 30
    assert status == 0


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (refused, "stopped answering: no connection for"),
        (refused_then_unavailable, "took no record for"),  # neither kind alone lasted the window: it went on
    ],
    ids=["refused connections", "refused connections then 503"],
)
def test_an_outage_longer_than_the_window_stops_posting_and_reports_the_records_not_taken(
    failure: Failure, reason: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi((1.0, float("inf")), failure)
    status = post(api, monkeypatch, "--duration", "60", "--rate", "5", "--concurrency", "4")
    ended = time.monotonic()
    out, err = capsys.readouterr()
    assert status == 1
    assert f"the API at http://api.test {reason}" in err.strip().splitlines()[-1]
    assert api.first is not None
    assert ended - (api.first + 1.0) < GIVE_UP_AFTER_S + BACKOFF_MAX_S + 1.0  # a backoff or Retry-After is 2 s
    # the records in flight waited for the API (none was dropped for the next one) and are reported as not taken
    assert 1 <= len(api.failed) <= 4
    answers = dict(re.findall(r"(\w+): (\d+)", out.split("answers: ")[-1]))
    assert int(answers.get("ConnectError", 0)) + int(answers.get("503", 0)) == len(api.failed), out


def test_a_record_refused_alone_is_retried_for_the_window_then_given_up_while_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The API answers 503 to one geo record only (say its topic is missing): posting must neither stop nor hang."""
    doomed: list[bytes] = []
    tried_at: list[float] = []

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/geo/" and (not doomed or doomed == [request.content]):
            doomed[:] = [request.content]
            tried_at.append(time.monotonic())
            return unavailable(request, 0.0)
        return httpx.Response(201, json={})

    status = post(api, monkeypatch, "--count", "40", "--rate", "4", "--concurrency", "2")
    err = capsys.readouterr().err
    assert status == 1
    assert err.strip().splitlines()[-1] == "1 of 120 records were not accepted (503: 1)"
    assert tried_at[-1] - tried_at[0] >= GIVE_UP_AFTER_S - 0.1
    assert re.search(r"\b503 for\b", err) is None  # posting did not stop for it
