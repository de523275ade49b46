"""What the API acknowledges is in Kafka, unchanged, where the answer says."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from include.emulator.generate import generate_triples
from include.records import ENTITIES, MODELS
from tests.api.kafka_helpers import read_all
from tests.api_process import RunningApi, log_lines, metric_values, running_api
from tests.conftest import REAL_PIN_SAMPLE as SAMPLE


def sample_rows() -> list[dict[str, object]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


def test_every_real_sample_row_is_accepted_and_stored_unchanged(api: RunningApi) -> None:
    rows = sample_rows()
    answers = []
    before_ms = time.time_ns() // 1_000_000
    with httpx.Client(base_url=api.url, timeout=10) as client:
        for row in rows:
            response = client.post("/pin/", content=json.dumps(row))
            assert response.status_code == 200, response.text
            answers.append(response.json())
    after_ms = time.time_ns() // 1_000_000

    stored = {(r.partition, r.offset): r for r in read_all(api.bootstrap, api.topic("pin"))}
    assert len(rows) == 200
    for row, answer in zip(rows, answers, strict=True):
        assert answer["topic"] == api.topic("pin")
        record = stored[(answer["partition"], answer["offset"])]
        assert json.loads(record.value) == row
        assert record.key == str(row["unique_id"]).encode()
        assert dict(record.headers)["request_id"] == answer["request_id"].encode()
        assert before_ms <= record.timestamp <= after_ms


def test_geo_and_user_records_go_to_their_topics_keyed_by_ind(api: RunningApi) -> None:
    triples = list(generate_triples(seed=7, count=5, repeat_percent=0))
    sent: dict[str, list[tuple[dict[str, object], dict[str, object], int]]] = {"geo": [], "user": []}
    with httpx.Client(base_url=api.url, timeout=10) as client:
        for triple in triples:
            for entity in ("geo", "user"):
                body = triple.record(entity).model_dump(mode="json")
                response = client.post(f"/{entity}/", json=body)
                assert response.status_code == 200, response.text
                sent[entity].append((body, response.json(), triple.geo.ind))
    for entity, posted in sent.items():
        stored = {(r.partition, r.offset): r for r in read_all(api.bootstrap, api.topic(entity))}
        for body, answer, ind in posted:
            assert answer["topic"] == api.topic(entity)
            record = stored[(answer["partition"], answer["offset"])]
            assert (record.key, json.loads(record.value)) == (str(ind).encode(), body)


def test_a_record_posted_without_the_trailing_slash_is_stored_not_redirected(api: RunningApi) -> None:
    body = next(iter(generate_triples(seed=11, count=1, repeat_percent=0))).record("geo").model_dump(mode="json")
    with httpx.Client(base_url=api.url, timeout=10) as client:
        response = client.post("/geo", json=body)  # httpx follows no redirect: a 307 would fail here
        invalid = client.post("/geo", json={"ind": "x"})
    assert response.status_code == 200, response.text
    stored = {(r.partition, r.offset): r for r in read_all(api.bootstrap, api.topic("geo"))}
    assert json.loads(stored[(response.json()["partition"], response.json()["offset"])].value) == body
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"][0] == "body"


def test_batch_answers_per_record_and_stores_only_the_valid_ones(api: RunningApi) -> None:
    triples = list(generate_triples(seed=11, count=3, repeat_percent=0))
    good = [t.user.model_dump(mode="json") for t in triples]
    bad = {**good[0], "age": -3}
    with httpx.Client(base_url=api.url, timeout=10) as client:
        before = {(r.partition, r.offset) for r in read_all(api.bootstrap, api.topic("user"))}
        response = client.post("/user/batch", json=[good[0], bad, good[1], good[2]])
    assert response.status_code == 207, response.text
    answer = response.json()
    assert (answer["accepted"], answer["invalid"], answer["unavailable"]) == (3, 1, 0)
    assert [item["status"] for item in answer["results"]] == ["accepted", "invalid", "accepted", "accepted"]
    assert answer["results"][1]["errors"][0]["field"] == "age"
    stored = {(r.partition, r.offset): json.loads(r.value) for r in read_all(api.bootstrap, api.topic("user"))}
    new = {coords: value for coords, value in stored.items() if coords not in before}
    accepted = [item for item in answer["results"] if item["status"] == "accepted"]
    assert {(i["partition"], i["offset"]): good[n] for i, n in zip(accepted, (0, 1, 2), strict=True)} == new


def test_a_batch_of_valid_records_is_200(api: RunningApi) -> None:
    pins = [t.pin.model_dump(mode="json") for t in generate_triples(seed=12, count=20, repeat_percent=0)]
    response = httpx.post(f"{api.url}/pin/batch", json=pins, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 20


def test_health_ready_and_metrics(api: RunningApi) -> None:
    assert httpx.get(f"{api.url}/health").json()["status"] == "ok"
    assert httpx.get(f"{api.url}/ready").status_code == 200
    rejected = 'ingest_records_rejected_total{entity="geo",reason="invalid"}'
    answered = 'ingest_request_duration_seconds_count{method="POST",route="/geo/",status="422"}'
    before = metric_values(httpx.get(f"{api.url}/metrics").text, rejected, answered)
    assert httpx.post(f"{api.url}/geo/", json={"ind": "x"}).status_code == 422
    after = metric_values(httpx.get(f"{api.url}/metrics").text, rejected, answered)
    assert after == {name: value + 1 for name, value in before.items()}


def test_request_id_is_echoed_and_logged(api: RunningApi) -> None:
    response = httpx.post(f"{api.url}/geo/", json={"ind": -1}, headers={"x-request-id": "trace-abc.123"})
    assert response.headers["x-request-id"] == "trace-abc.123"
    logged = log_lines(api.log_path)
    assert any(entry.get("request_id") == "trace-abc.123" for entry in logged)


def test_the_openapi_document_has_a_single_and_a_batch_route_per_entity(api: RunningApi) -> None:
    paths = httpx.get(f"{api.url}/openapi.json", timeout=10).json()["paths"]
    assert {path for path, operations in paths.items() if "post" in operations} == {
        f"/{entity}/{route}" for entity in ENTITIES for route in ("", "batch")
    }
    for entity in ENTITIES:
        title = MODELS[entity].__name__
        single = paths[f"/{entity}/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        batch = paths[f"/{entity}/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert (single["title"], batch["type"], batch["items"]["title"]) == (title, "array", title)


def test_an_api_with_compression_off_starts_and_stores_records(
    stack_env: dict[str, str], api_topics: str, tmp_path: Path
) -> None:
    with running_api(stack_env, api_topics, tmp_path / "api.log", {"KAFKA_COMPRESSION": ""}) as url:
        geo = next(generate_triples(seed=13, count=1, repeat_percent=0)).geo.model_dump(mode="json")
        response = httpx.post(f"{url}/geo/", json=geo, timeout=10)
    assert response.status_code == 200, response.text
    answer = response.json()
    stored = {
        (r.partition, r.offset): json.loads(r.value)
        for r in read_all(stack_env["KAFKA_BOOTSTRAP_SERVERS"], answer["topic"])
    }
    assert stored[(answer["partition"], answer["offset"])] == geo
