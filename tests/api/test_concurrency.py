"""Under concurrent load every post is accepted and is exactly one record in Kafka: none lost, none extra."""

from __future__ import annotations

import asyncio
import json

import httpx

from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import read_all
from tests.api_process import RunningApi

CONNECTIONS = 64
TRIPLES = 400


async def post_all(url: str, bodies: list[tuple[str, str]]) -> list[tuple[str, int, dict[str, object] | None]]:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    answers: list[tuple[str, int, dict[str, object] | None]] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            path, body = queue.get_nowait()
            response = await client.post(path, content=body)
            answers.append((body, response.status_code, response.json() if response.status_code == 200 else None))

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONNECTIONS)))
    return answers


def test_concurrent_posts_are_each_stored_exactly_once(api: RunningApi) -> None:
    triples = list(generate_triples(seed=21, count=TRIPLES))
    bodies = [
        (f"/{entity}/", triple.record(entity).model_dump_json(exclude_none=True))
        for triple in triples
        for entity in ("pin", "geo", "user")
    ]
    answers = asyncio.run(post_all(api.url, bodies))

    assert sorted(body for body, _, _ in answers) == sorted(body for _, body in bodies)
    assert [status for _, status, _ in answers] == [200] * len(bodies)
    stored = [r for entity in ("pin", "geo", "user") for r in read_all(api.bootstrap, api.topic(entity))]
    assert len(stored) == len(bodies)
    by_coordinates = {(r.topic, r.partition, r.offset): json.loads(r.value) for r in stored}
    coordinates = [(answer["topic"], answer["partition"], answer["offset"]) for _, _, answer in answers if answer]
    assert len(set(coordinates)) == len(bodies)
    assert [by_coordinates[c] for c in coordinates] == [json.loads(body) for body, _, _ in answers]
