"""API_MAX_REQUESTS_IN_FLIGHT: slow uploaders cannot make a worker hold more bodies than the limit; the request
beyond it gets 503 with Retry-After at once, and the held ones are answered as usual."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import read_all
from tests.api_process import metric_values, running_api

GEOS = [t.geo.model_dump(mode="json") for t in generate_triples(seed=17, count=4, repeat_percent=0)]
LIMIT = 2
BUSY = 'ingest_records_rejected_total{entity="geo",reason="busy"}'


@dataclass
class SlowUpload:
    """A POST /geo/ whose body is sent but for its last byte: the API holds it until that byte comes."""

    client: socket.socket
    last_byte: bytes

    @classmethod
    def start(cls, url: str, record: dict[str, object], stack: ExitStack) -> SlowUpload:
        host, port = url.removeprefix("http://").split(":")
        client = stack.enter_context(socket.create_connection((host, int(port)), timeout=10))
        body = json.dumps(record).encode()
        head = (
            f"POST /geo/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        client.sendall(head.encode() + body[:-1])
        return cls(client, body[-1:])

    def finish(self) -> tuple[int, dict[str, object]]:
        """Send the last byte and read the answer: its status and JSON body."""
        self.client.sendall(self.last_byte)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += self.client.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        while len(body) < length:
            body += self.client.recv(65536)
        return int(lines[0].split()[1]), json.loads(body)


def refusals(url: str) -> Iterator[httpx.Response]:
    """POST a record again and again (for at most 10 s) until the API refuses it for being busy."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = httpx.post(f"{url}/geo/", json=GEOS[3], timeout=10)
        yield answer
        if answer.status_code == 503:
            return
        time.sleep(0.1)


def test_requests_beyond_the_limit_get_503_and_the_held_ones_are_stored(
    stack_env: dict[str, str], api_topics: str, tmp_path: Path
) -> None:
    extra = {"API_MAX_REQUESTS_IN_FLIGHT": str(LIMIT), "API_RETRY_AFTER_S": "3"}
    with running_api(stack_env, api_topics, tmp_path / "api.log", extra) as url, ExitStack() as stack:
        busy_before = metric_values(httpx.get(f"{url}/metrics", timeout=10).text, BUSY)[BUSY]
        held = [SlowUpload.start(url, GEOS[i], stack) for i in range(LIMIT)]
        answers = list(refusals(url))
        refused = answers[-1]
        ready = httpx.get(f"{url}/ready", timeout=10)
        finished = [upload.finish() for upload in held]
        after = httpx.post(f"{url}/geo/", json=GEOS[2], timeout=10)
        busy_after = metric_values(httpx.get(f"{url}/metrics", timeout=10).text, BUSY)[BUSY]

    assert refused.status_code == 503, [a.status_code for a in answers]
    assert refused.headers["retry-after"] == "3"
    assert "handling 2 requests already (API_MAX_REQUESTS_IN_FLIGHT)" in refused.json()["detail"]
    assert busy_after - busy_before == 1
    assert ready.status_code == 200  # GETs are not counted
    assert [status for status, _ in finished] == [200] * LIMIT, finished
    assert after.status_code == 200, after.text
    stored = {(r.partition, r.offset): json.loads(r.value) for r in read_all(stack_env["KAFKA_BOOTSTRAP_SERVERS"],
                                                                             f"{api_topics}.geo")}  # fmt: skip
    delivered = [(answer, GEOS[i]) for i, (_, answer) in enumerate(finished)] + [(after.json(), GEOS[2])]
    for answer, record in delivered:
        assert stored[(answer["partition"], answer["offset"])] == record
    # a POST answered before the refusal (when the API had not read the held requests' heads yet) is stored too
    assert sum(1 for r in stored.values() if r == GEOS[3]) == len(answers) - 1
