"""Bad input gets the right status, names what is wrong, and never reaches Kafka."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import end_offsets, read_all
from tests.api_process import RunningApi, start_api, stop_api

TRIPLE = next(generate_triples(seed=3, count=1))
PIN = TRIPLE.pin.model_dump(mode="json")
GEO = TRIPLE.geo.model_dump(mode="json")
USER = TRIPLE.user.model_dump(mode="json")
LIMIT = 1_048_576
INT64_MAX = 2**63 - 1  # the largest value of Spark's LongType, which the id fields are read as
NAN_LATITUDE = '{"ind": 1, "timestamp": "2020-01-01 00:00:00", "latitude": NaN, "longitude": 0, "country": "X"}'


def without(record: dict[str, object], field: str) -> dict[str, object]:
    return {k: v for k, v in record.items() if k != field}


# (path, raw body, expected status, field the answer must name or None)
BAD_INPUTS = [
    ("/pin/", "not json at all", 400, None),
    ("/pin/", '{"index": 1,', 400, None),
    ("/pin/", "", 400, None),
    ("/pin/", json.dumps([PIN]), 422, ""),
    ("/pin/", json.dumps({**PIN, "index": "12"}), 422, "index"),
    ("/pin/", json.dumps({**PIN, "index": -1}), 422, "index"),
    ("/pin/", json.dumps({**PIN, "index": INT64_MAX + 1}), 422, "index"),
    ("/pin/", json.dumps({**PIN, "unique_id": "not-a-uuid"}), 422, "unique_id"),
    ("/pin/", json.dumps({**PIN, "downloaded": 2}), 422, "downloaded"),
    ("/pin/", json.dumps(without(PIN, "category")), 422, "category"),
    ("/pin/", json.dumps({**PIN, "surprise": 1}), 422, "surprise"),
    ("/geo/", json.dumps({**GEO, "latitude": 200}), 422, "latitude"),
    ("/geo/", json.dumps({**GEO, "longitude": -180.5}), 422, "longitude"),
    ("/geo/", json.dumps({**GEO, "latitude": "45"}), 422, "latitude"),
    ("/geo/", json.dumps({**GEO, "timestamp": "yesterday at noon"}), 422, "timestamp"),
    ("/geo/", json.dumps(without(GEO, "ind")), 422, "ind"),
    ("/geo/", json.dumps({**GEO, "ind": INT64_MAX + 1}), 422, "ind"),
    ("/geo/", json.dumps({**GEO, "ind": 10**30}), 422, "ind"),
    ("/geo/", json.dumps({**GEO, "timestamp": "1700000000"}), 422, "timestamp"),
    ("/geo/", NAN_LATITUDE, 422, "latitude"),
    ("/user/", json.dumps({**USER, "age": -3}), 422, "age"),
    ("/user/", json.dumps({**USER, "age": 30.5}), 422, "age"),
    ("/user/", json.dumps({**USER, "date_joined": "2020-13-45 99:00:00"}), 422, "date_joined"),
    ("/user/", json.dumps({**USER, "ind": True}), 422, "ind"),
    ("/user/", json.dumps({**USER, "ind": INT64_MAX + 1}), 422, "ind"),
    ("/user/batch", json.dumps([{**USER, "ind": INT64_MAX + 1}]), 422, "ind"),
    ("/user/batch", json.dumps(USER), 422, ""),
    ("/user/batch", "[]", 422, ""),
    ("/user/batch", json.dumps([USER] * 501), 422, ""),
    ("/user/batch", json.dumps([{**USER, "age": -1}]), 422, "age"),
    ("/user/batch", "[{", 400, None),
    ("/pin/", json.dumps({**PIN, "description": "x" * (LIMIT + 1)}), 413, None),
    ("/pin/batch", json.dumps([PIN] * 2000), 413, None),
]


def named_fields(answer: dict[str, object]) -> set[str]:
    """The fields a 422 answer names, for single (``detail``) and batch (``results[].errors``) answers."""
    if "detail" in answer:
        return {error["field"] for error in answer["detail"]}
    return {error["field"] for item in answer["results"] for error in item.get("errors") or ()}


@pytest.mark.parametrize(
    ("path", "body", "status", "field"), BAD_INPUTS, ids=[f"{p}:{s}:{f}" for p, _, s, f in BAD_INPUTS]
)
def test_bad_input_is_rejected_and_not_produced(
    api: RunningApi, path: str, body: str, status: int, field: str | None
) -> None:
    before = end_offsets(api.bootstrap, api.topics)
    response = httpx.post(f"{api.url}{path}", content=body.encode(), timeout=10)
    assert response.status_code == status, response.text
    if field is not None:
        assert field in named_fields(response.json())
    else:
        assert response.json()["detail"]
    assert end_offsets(api.bootstrap, api.topics) == before


def test_a_pin_without_poster_name_is_accepted(api: RunningApi) -> None:
    response = httpx.post(f"{api.url}/pin/", json=without(PIN, "poster_name"), timeout=10)
    assert response.status_code == 200, response.text


def test_the_largest_int64_id_is_accepted_and_stored_as_sent(api: RunningApi) -> None:
    response = httpx.post(f"{api.url}/geo/", json={**GEO, "ind": INT64_MAX}, timeout=10)
    assert response.status_code == 200, response.text
    stored = {(r.partition, r.offset): r for r in read_all(api.bootstrap, api.topic("geo"))}
    record = stored[(response.json()["partition"], response.json()["offset"])]
    assert (record.key, json.loads(record.value)["ind"]) == (b"9223372036854775807", 9223372036854775807)


@pytest.fixture(scope="module")
def keyed_api(
    stack_env: dict[str, str], api_topics: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApi]:
    """A second API on the same topics that requires an API key."""
    key = "k-" + "7f3a9c" * 6
    log_path: Path = tmp_path_factory.mktemp("keyed") / "api.log"
    process, url = start_api(stack_env, api_topics, log_path, {"API_KEY": key, "API_LOG_LEVEL": "debug"})
    try:
        yield RunningApi(url, api_topics, stack_env["KAFKA_BOOTSTRAP_SERVERS"], log_path, api_key=key)
    finally:
        stop_api(process)


def test_api_key_is_required_when_configured_and_never_logged(keyed_api: RunningApi) -> None:
    assert keyed_api.api_key is not None
    before = end_offsets(keyed_api.bootstrap, keyed_api.topics)
    missing = httpx.post(f"{keyed_api.url}/geo/", json=GEO, timeout=10)
    wrong = httpx.post(f"{keyed_api.url}/geo/batch", json=[GEO], headers={"x-api-key": "nope"}, timeout=10)
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert end_offsets(keyed_api.bootstrap, keyed_api.topics) == before

    right = httpx.post(f"{keyed_api.url}/geo/", json=GEO, headers={"x-api-key": keyed_api.api_key}, timeout=10)
    assert right.status_code == 200, right.text
    stored = {(r.partition, r.offset) for r in read_all(keyed_api.bootstrap, keyed_api.topic("geo"))}
    assert (right.json()["partition"], right.json()["offset"]) in stored
    assert httpx.get(f"{keyed_api.url}/health").status_code == 200
    assert keyed_api.api_key not in keyed_api.log_path.read_text()


@pytest.mark.parametrize("item", ["1", '"a geo record"', "null", json.dumps([GEO])], ids=["int", "str", "null", "list"])
def test_a_batch_item_that_is_not_an_object_gets_the_single_endpoints_words(api: RunningApi, item: str) -> None:
    single = httpx.post(f"{api.url}/geo/", content=item, timeout=10)
    batch = httpx.post(f"{api.url}/geo/batch", content=f"[{item}]", timeout=10)
    assert (single.status_code, batch.status_code) == (422, 422), batch.text
    [result] = batch.json()["results"]
    assert result["status"] == "invalid"
    expected = [(error["msg"], error["type"]) for error in single.json()["detail"]]
    assert [(error["msg"], error["type"]) for error in result["errors"]] == expected
    assert result["errors"][0]["loc"] == ["body", 0]
    assert "GeoRecord" not in batch.text


def test_the_batch_route_documents_413_for_the_body_only(api: RunningApi) -> None:
    paths = httpx.get(f"{api.url}/openapi.json", timeout=10).json()["paths"]
    assert "Kafka" in paths["/geo/"]["post"]["responses"]["413"]["description"]
    assert "Kafka" not in paths["/geo/batch"]["post"]["responses"]["413"]["description"]
