"""Kafka stopped: the API answers 503 with Retry-After before a client's 10 s timeout (kafka-python alone would
block 60 s); Kafka back: it accepts again by itself.

Stops the stack's Kafka for everyone, so it is marked ``disruptive`` (run it last, serially).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import read_all
from tests.api_process import REPO, RunningApi

# Far below kafka-python's 60 s default block: a 503 must come long before the client gives up.
CLIENT_TIMEOUT_S = 10.0


def devstack(action: str) -> None:
    subprocess.run([sys.executable, "-m", "devstack", action, "kafka"], cwd=REPO, check=True, timeout=180)


@pytest.mark.disruptive
def test_kafka_down_gives_503_before_the_client_times_out_and_recovery_is_automatic(api: RunningApi) -> None:
    pins = [
        t.pin.model_dump(mode="json", exclude_none=True) for t in generate_triples(seed=31, count=200, repeat_percent=0)
    ]
    acknowledged: list[tuple[dict[str, object], dict[str, object]]] = []
    with httpx.Client(base_url=api.url, timeout=CLIENT_TIMEOUT_S) as client:
        first = client.post("/pin/", json=pins[0])
        assert first.status_code == 200, first.text
        acknowledged.append((pins[0], first.json()))

        devstack("stop")
        try:
            started = time.monotonic()
            down = client.post("/pin/", json=pins[1])
            waited_s = time.monotonic() - started
            assert down.status_code == 503, down.text
            assert int(down.headers["retry-after"]) >= 1
            print(f"503 after {waited_s:.2f} s")
            assert client.get("/health").status_code == 200
            assert client.get("/ready").status_code == 503
        finally:
            devstack("start")

        answers = []
        for pin in pins[2:]:
            response = client.post("/pin/", json=pin)
            answers.append(response.status_code)
            if response.status_code == 200:
                acknowledged.append((pin, response.json()))
                break
            assert response.status_code == 503, response.text
            time.sleep(1)
        assert answers[-1] == 200, f"no 2xx after Kafka came back: {answers}"
        assert client.get("/ready").status_code == 200

    stored = {(r.partition, r.offset): json.loads(r.value) for r in read_all(api.bootstrap, api.topic("pin"))}
    for pin, answer in acknowledged:
        assert stored[(answer["partition"], answer["offset"])] == pin
