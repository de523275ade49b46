"""Bad input gets the right status, names what is wrong, and never reaches Kafka."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from include.emulator.generate import generate_triples
from tests.api.kafka_helpers import end_offsets, read_all
from tests.api_process import RunningApi, log_lines, metric_values, running_api

TRIPLE = next(generate_triples(seed=3, count=1))
PIN = TRIPLE.pin.model_dump(mode="json")
GEO = TRIPLE.geo.model_dump(mode="json")
USER = TRIPLE.user.model_dump(mode="json")
LIMIT = 1_048_576
INT64_MAX = 2**63 - 1  # the largest value of Spark's LongType, which the id fields are read as


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
    with running_api(stack_env, api_topics, log_path, {"API_KEY": key, "API_LOG_LEVEL": "debug"}) as url:
        yield RunningApi(url, api_topics, stack_env["KAFKA_BOOTSTRAP_SERVERS"], log_path, api_key=key)


def test_api_key_is_required_when_configured_and_never_logged(keyed_api: RunningApi) -> None:
    assert keyed_api.api_key is not None
    before = end_offsets(keyed_api.bootstrap, keyed_api.topics)
    missing = httpx.post(f"{keyed_api.url}/geo/", json=GEO, timeout=10)
    wrong = httpx.post(
        f"{keyed_api.url}/geo/batch", json=[GEO], headers={"x-api-key": "nope", "x-request-id": "wrong-key"}, timeout=10
    )
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert {"status": 401, "entity": "geo"}.items() <= refusal_logged(keyed_api, "wrong-key").items()
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


def stored_values(api: RunningApi, entity: str, answer: dict[str, object]) -> list[dict[str, object]]:
    """The values Kafka holds at the positions of the accepted items of a batch answer."""
    positions = {(item["partition"], item["offset"]) for item in answer["results"] if item["status"] == "accepted"}
    return [
        json.loads(r.value) for r in read_all(api.bootstrap, api.topic(entity)) if (r.partition, r.offset) in positions
    ]


def doubled(record: dict[str, object], field: str, first: object) -> str:
    """The JSON of ``record`` with ``field`` named twice: first ``first``, then the record's own value."""
    rest = json.dumps(without(record, field))[1:]
    return f'{{"{field}": {json.dumps(first)}, "{field}": {json.dumps(record[field])}, {rest}'


DOUBLED_KEYS = [
    ("/user/", doubled(USER, "age", -5), "age"),
    ("/user/", doubled(USER, "ind", 7), "ind"),
    ("/pin/", doubled(PIN, "unique_id", "7f3a9c00-0000-4000-8000-000000000000"), "unique_id"),
    ("/geo/", json.dumps(GEO, indent=2)[:-1] + ',\n  "country": "Atlantis"\n}', "country"),
]


@pytest.mark.parametrize(("path", "body", "key"), DOUBLED_KEYS, ids=[f"{p}:{k}" for p, _, k in DOUBLED_KEYS])
def test_an_object_naming_a_key_twice_is_refused_naming_the_key(
    api: RunningApi, path: str, body: str, key: str
) -> None:
    assert json.loads(body) is not None  # the body is JSON (whose last value would have been kept)
    before = end_offsets(api.bootstrap, api.topics)
    response = httpx.post(f"{api.url}{path}", content=body.encode(), timeout=10)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert (error["msg"], error["type"], error["loc"]) == (
        f"the key '{key}' appears twice in one object",
        "duplicate_key",
        ["body"],
    )
    assert end_offsets(api.bootstrap, api.topics) == before


@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
def test_a_batch_refuses_each_object_naming_a_key_twice_and_stores_the_others(
    api: RunningApi, indent: int | None
) -> None:
    other = {**USER, "ind": USER["ind"] + 1}
    items = [json.dumps(USER, indent=indent), doubled(USER, "age", -5), json.dumps(other, indent=indent)]
    answer = httpx.post(f"{api.url}/user/batch", content=f"[{', '.join(items)}]".encode(), timeout=10)
    assert answer.status_code == 207, answer.text
    result = answer.json()
    assert [item["status"] for item in result["results"]] == ["accepted", "invalid", "accepted"]
    assert result["results"][1]["errors"] == [
        {"field": "", "loc": ["body", 1], "msg": "the key 'age' appears twice in one object", "type": "duplicate_key"}
    ]
    assert sorted(v["ind"] for v in stored_values(api, "user", result)) == [USER["ind"], USER["ind"] + 1]

    only_doubled = httpx.post(f"{api.url}/user/batch", content=f"[{doubled(USER, 'age', -5)}]".encode(), timeout=10)
    assert only_doubled.status_code == 422, only_doubled.text
    assert only_doubled.json()["results"][0]["errors"][0]["type"] == "duplicate_key"


def test_a_key_quoted_inside_a_value_is_not_a_doubled_key(api: RunningApi) -> None:
    pin = {**PIN, "description": 'says "index": 3, "title": "x"', "title": '"category" : '}
    single = httpx.post(f"{api.url}/pin/", content=json.dumps(pin, indent=1).encode(), timeout=10)
    batch = httpx.post(f"{api.url}/pin/batch", content=json.dumps([pin, pin], indent=1).encode(), timeout=10)
    assert (single.status_code, batch.status_code) == (200, 200), batch.text


UNKNOWN_KEYS = 95_000
MANY_UNKNOWN = json.dumps({**USER, **{f"u{i}": 0 for i in range(UNKNOWN_KEYS)}}, separators=(",", ":"))


@pytest.mark.parametrize("path", ["/user/", "/user/batch"])
def test_very_many_unknown_fields_get_a_small_answer_naming_the_first(api: RunningApi, path: str) -> None:
    body = MANY_UNKNOWN if path == "/user/" else f"[{MANY_UNKNOWN}]"
    assert len(body) <= LIMIT
    response = httpx.post(f"{api.url}{path}", content=body.encode(), timeout=30)
    assert response.status_code == 422, response.text[:300]
    assert len(response.content) < 64 * 1024
    answer = response.json()
    errors = answer["detail"] if path == "/user/" else answer["results"][0]["errors"]
    counted = answer if path == "/user/" else answer["results"][0]
    assert [e["field"] for e in errors] == [f"u{i}" for i in range(20)]
    assert {e["type"] for e in errors} == {"extra_forbidden"}
    assert counted["error_count"] == UNKNOWN_KEYS
    assert max(len(line) for line in api.log_path.read_bytes().splitlines()) < 64 * 1024


def test_few_errors_are_all_listed_without_a_count(api: RunningApi) -> None:
    response = httpx.post(f"{api.url}/user/", json={**without(USER, "age"), "a": 1, "b": 2}, timeout=10)
    assert response.status_code == 422, response.text
    assert sorted(e["field"] for e in response.json()["detail"]) == ["a", "age", "b"]
    assert "error_count" not in response.json()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/json"]
)
@pytest.mark.parametrize("path", ["/geo/", "/geo/batch"])
def test_a_body_declared_as_another_type_gets_415_naming_json(api: RunningApi, path: str, content_type: str) -> None:
    body = json.dumps(GEO if path == "/geo/" else [GEO]).encode()
    before = end_offsets(api.bootstrap, api.topics)
    response = httpx.post(f"{api.url}{path}", content=body, headers={"content-type": content_type}, timeout=10)
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["detail"]
    assert end_offsets(api.bootstrap, api.topics) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json; charset=utf-8"},
        {"content-type": 'application/json; charset="UTF8"'},
        {"content-type": "application/json; charset=us-ascii"},
        {"content-type": 'application/json; profile="a;charset=latin1"'},  # a quoted ';' starts no parameter
        {"content-type": "Application/JSON"},
        {"content-encoding": "identity"},
        {"content-encoding": ",identity"},  # empty list elements are ignored (RFC 9110 5.6.1)
        {},
    ],
    ids=["charset", "quoted-utf8", "ascii", "quoted-semicolon", "case", "identity", "identity-list", "absent"],
)
def test_json_with_parameters_any_case_or_no_content_type_is_accepted(api: RunningApi, headers: dict[str, str]) -> None:
    request = httpx.Request("POST", f"{api.url}/geo/", content=json.dumps(GEO).encode(), headers=headers)
    assert ("content-type" in request.headers) == ("content-type" in headers)
    response = httpx.Client(timeout=10).send(request)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (
            {"content-type": "application/json; charset=windows-1252"},
            "must be utf-8 (JSON is UTF-8), got 'windows-1252'",
        ),
        ({"content-type": 'application/json; charset="UTF-16"'}, "must be utf-8 (JSON is UTF-8), got 'UTF-16'"),
        ({"content-encoding": "gzip"}, "Content-Encoding 'gzip' is not supported"),
        ({"content-type": "application/json", "content-encoding": "br"}, "Content-Encoding 'br' is not supported"),
        ({"content-encoding": "identity, gzip"}, "Content-Encoding 'gzip' is not supported"),
        ([("content-encoding", "identity"), ("content-encoding", "gzip")], "Content-Encoding 'gzip' is not supported"),
        (
            [("content-type", "application/json"), ("content-type", "application/json; charset=latin1")],
            "Content-Type is given more than once",
        ),
    ],
    ids=["cp1252", "utf16", "gzip", "br", "gzip-listed", "gzip-second-line", "two-types"],
)
@pytest.mark.parametrize("path", ["/pin/", "/pin/batch"])
def test_a_body_in_another_charset_or_compressed_gets_415_naming_it(
    api: RunningApi, path: str, headers: dict[str, str] | list[tuple[str, str]], reason: str
) -> None:
    # cp1252 bytes that are valid UTF-8 too: read as UTF-8, the title would be stored as '© über'
    record = {**PIN, "title": "Â© Ã¼ber"}
    body = json.dumps(record if path == "/pin/" else [record], ensure_ascii=False).encode("cp1252")
    before = end_offsets(api.bootstrap, api.topics)
    response = httpx.post(f"{api.url}{path}", content=body, headers=headers, timeout=10)
    assert response.status_code == 415, response.text
    assert reason in response.json()["detail"]
    assert end_offsets(api.bootstrap, api.topics) == before


@pytest.mark.parametrize("path", ["/geo/", "/geo/batch"])
def test_a_body_starting_with_a_byte_order_mark_gets_400_naming_it(api: RunningApi, path: str) -> None:
    body = b"\xef\xbb\xbf" + json.dumps(GEO if path == "/geo/" else [GEO]).encode()
    before = end_offsets(api.bootstrap, api.topics)
    response = httpx.post(f"{api.url}{path}", content=body, timeout=10)
    assert response.status_code == 400, response.text
    assert "byte order mark" in response.json()["detail"]
    assert end_offsets(api.bootstrap, api.topics) == before


def test_an_unknown_key_is_named_cut_to_a_hundred_characters(api: RunningApi) -> None:
    long_key = "k" * 1_000_000
    response = httpx.post(f"{api.url}/geo/", content=json.dumps({**GEO, long_key: 1}), timeout=10)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == "k" * 100 + "…" and error["loc"] == ["body", "k" * 100 + "…"]
    assert len(response.content) < 1000


def test_415_is_documented(api: RunningApi) -> None:
    paths = httpx.get(f"{api.url}/openapi.json", timeout=10).json()["paths"]
    assert "application/json" in paths["/geo/"]["post"]["responses"]["415"]["description"]
    assert "application/json" in paths["/geo/batch"]["post"]["responses"]["415"]["description"]


NOT_FINITE = ["NaN", "Infinity", "-Infinity"]


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize("field", ["latitude", "longitude"])
def test_a_number_that_is_not_finite_is_refused_as_such(api: RunningApi, field: str, value: str) -> None:
    record = json.dumps({**GEO, field: 0}).replace(f'"{field}": 0', f'"{field}": {value}')
    single = httpx.post(f"{api.url}/geo/", content=record.encode(), timeout=10)
    batch = httpx.post(f"{api.url}/geo/batch", content=f"[{record}]".encode(), timeout=10)
    assert (single.status_code, batch.status_code) == (422, 422), single.text
    expected = [
        {"field": field, "loc": ["body", field], "msg": "Input should be a finite number", "type": "finite_number"}
    ]
    assert single.json()["detail"] == expected
    assert batch.json()["results"][0]["errors"] == [{**expected[0], "loc": ["body", 0, field]}]


@pytest.mark.parametrize(
    ("latitude", "longitude"), [("90", "-180"), ("-90.0", "180.0"), ("1e-300", "-0.0"), ("4.5E1", "-1.8e2")]
)
def test_finite_edge_values_are_still_accepted_as_sent(api: RunningApi, latitude: str, longitude: str) -> None:
    record = json.dumps({**GEO, "latitude": 0, "longitude": 1})
    record = record.replace('"latitude": 0', f'"latitude": {latitude}').replace(
        '"longitude": 1', f'"longitude": {longitude}'
    )
    response = httpx.post(f"{api.url}/geo/batch", content=f"[{record}]".encode(), timeout=10)
    assert response.status_code == 200, response.text
    [stored] = stored_values(api, "geo", response.json())
    assert (stored["latitude"], stored["longitude"]) == (float(latitude), float(longitude))


def refusal_logged(api: RunningApi, request_id: str) -> dict:
    """The API's log entry of the refused request ``request_id`` (it fails when there is none, or several)."""
    [entry] = [e for e in log_lines(api.log_path) if e.get("request_id") == request_id]
    assert entry["message"] == "request refused"
    return entry


def test_every_request_refused_as_a_whole_is_logged_with_its_status_and_why(api: RunningApi) -> None:
    json_type = {"content-type": "application/json"}
    refused = {
        "not-json": ("/pin/", b"{bad", json_type, 400),
        "plain-text": ("/geo/batch", b"{}", {"content-type": "text/plain"}, 415),
        "too-large": ("/user/", b" " * (1_048_576 + 1), json_type, 413),
        "not-a-list": ("/pin/batch", b"{}", json_type, 422),
    }
    for request_id, (path, body, headers, status) in refused.items():
        response = httpx.post(f"{api.url}{path}", content=body, headers={**headers, "x-request-id": request_id})
        assert response.status_code == status, (request_id, response.text)
        entry = refusal_logged(api, request_id)
        assert (entry["status"], entry["entity"]) == (status, path.split("/")[1])
        detail = response.json()["detail"]
        assert entry["detail"] == (detail[0]["msg"] if status == 422 else detail)  # a 422 lists its errors


def test_a_body_over_the_limit_is_timed_under_its_route(api: RunningApi) -> None:
    timed = 'ingest_request_duration_seconds_count{method="POST",route="/user/",status="413"}'
    before = metric_values(httpx.get(f"{api.url}/metrics").text, timed)
    over = b" " * (1_048_576 + 1)
    response = httpx.post(f"{api.url}/user/", content=over, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.content == b'{"detail":"request body is larger than the limit of 1048576 bytes"}'
    assert metric_values(httpx.get(f"{api.url}/metrics").text, timed) == {timed: before[timed] + 1}
