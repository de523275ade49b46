"""A batch of messages into raw-zone and quarantine lines: both paths, every kind of bad message."""

from __future__ import annotations

import json

from include.drain.lines import _fast, _one_by_one, batch_lines, validator
from include.emulator.generate import generate_triples
from include.records import PinRecord, kafka_key, kafka_value
from tests.conftest import REAL_PIN_SAMPLE as SAMPLE

VALIDATE = validator("pin")
TS = 1710028800000


def _sample_values(n: int) -> list[bytes]:
    return [line.encode() for line in SAMPLE.read_text().splitlines()[:n]]


def _key(value: bytes) -> bytes:
    return json.loads(value)["unique_id"].encode()


def _generated_rows(n: int) -> list[tuple[int, int, bytes, bytes]]:
    """``n`` generated pins as messages at offsets 100, 101, ...: plain keys, one-line values, no doubled key."""
    pins = [triple.pin for triple in generate_triples(7, n, repeat_percent=0)]
    return [(100 + i, TS + i, kafka_key("pin", pin), kafka_value(pin)) for i, pin in enumerate(pins)]


def _expected_lines(partition: int, rows) -> list[dict]:
    return [
        {"partition": partition, "offset": o, "timestamp": t, "key": k.decode(), "value": json.loads(v)}
        for o, t, k, v in rows
    ]


def test_valid_batch_takes_the_batch_path_and_keeps_every_message_with_its_coordinates_and_value():
    rows = _generated_rows(50)
    assert _fast(2, rows, VALIDATE) is not None  # the batch path, not the message-by-message fallback
    out = batch_lines(2, rows, VALIDATE)
    assert out.offsets == list(range(100, 150))
    assert out.quarantine_lines == []
    assert [json.loads(line) for line in out.lines] == _expected_lines(2, rows)
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in out.lines)


def test_batch_path_and_message_path_write_the_same_bytes():
    rows = _generated_rows(50)
    assert _fast(0, rows, VALIDATE) == _one_by_one(0, rows, VALIDATE)


def test_real_records_keep_every_message_with_its_coordinates_and_value():
    """The real sample holds a quote followed by a blank inside a string: its batch goes message by message."""
    rows = [(100 + i, TS + i, _key(v), v) for i, v in enumerate(_sample_values(20))]
    assert _fast(2, rows, VALIDATE) is None
    out = batch_lines(2, rows, VALIDATE)
    assert out.quarantine_lines == []
    assert [json.loads(line) for line in out.lines] == _expected_lines(2, rows)


def test_bad_messages_are_quarantined_with_a_reason_and_the_rest_kept():
    good = _sample_values(3)
    multi_line = json.dumps(json.loads(good[2]), indent=2).encode()
    rows = [
        (0, TS, _key(good[0]), good[0]),
        (1, TS, b"k1", b"{not json"),
        (2, TS, b"k2", None),
        (3, TS, b"\xff", good[1]),
        (4, TS, None, good[1]),
        (5, TS, b"k5", b'{"index": 1}'),
        (6, TS, b'say "hi"', multi_line),
    ]
    out = batch_lines(1, rows, VALIDATE)
    assert out.offsets == [0, 4, 6]
    assert out.quarantine_offsets == [1, 2, 3, 5]
    kept = [json.loads(line) for line in out.lines]
    assert [k["key"] for k in kept] == [_key(good[0]).decode(), None, 'say "hi"']
    assert kept[2]["value"] == json.loads(good[2]) and b"\n" not in out.lines[2][:-1]
    reasons = {q["offset"]: q["reason"] for q in map(json.loads, out.quarantine_lines)}
    assert "Invalid JSON" in reasons[1]
    assert reasons[2] == "value: empty (tombstone)"
    assert reasons[3].startswith("key: not UTF-8 ('utf-8' codec can't decode byte 0xff")
    assert "unique_id: Field required" in reasons[5]


def _with_first_key_doubled(value: bytes, first: bytes) -> bytes:
    """``value`` with ``first`` put before its own members: the object then names that key twice."""
    return b"{" + first + b", " + value[1:]


def test_a_value_that_names_a_key_twice_is_quarantined_in_every_form():
    good = _sample_values(4)
    doubled = [
        _with_first_key_doubled(good[0], b'"index": "seven"'),  # pydantic keeps the last, a valid int
        _with_first_key_doubled(good[1], b'"index" :7528'),  # a blank before the colon
        _with_first_key_doubled(good[2], json.dumps({"category": json.loads(good[2])["category"]})[1:-1].encode()),
    ]
    for value in doubled:  # each is a valid record to pydantic: only the doubled key is wrong
        PinRecord.model_validate_json(value)
    rows = [(0, TS, _key(good[3]), good[3])] + [(i + 1, TS, _key(v), v) for i, v in enumerate(doubled)]

    out = batch_lines(0, rows, VALIDATE)

    assert out.offsets == [0]
    reasons = {q["offset"]: q["reason"] for q in map(json.loads, out.quarantine_lines)}
    assert reasons == {
        1: "value: the key 'index' appears twice in one object",
        2: "value: the key 'index' appears twice in one object",
        3: "value: the key 'category' appears twice in one object",
    }


def test_values_whose_text_only_looks_like_more_keys_are_kept():
    good = json.loads(_sample_values(1)[0])
    lookalikes = [
        json.dumps({**good, "title": 'a "quoted": title'}).encode(),  # '":' inside a string
        json.dumps({**good, "title": 'ends with a quote" '}).encode(),  # '"' then a blank inside a string
        json.dumps(good, separators=(" ,", " : ")).encode(),  # blanks before every colon
    ]
    rows = [(i, TS, _key(v), v) for i, v in enumerate(lookalikes)]

    out = batch_lines(0, rows, VALIDATE)

    assert out.offsets == [0, 1, 2] and out.quarantine_lines == []
    assert [json.loads(line)["value"] for line in out.lines] == [json.loads(v) for v in lookalikes]


def test_a_value_only_the_model_accepts_is_kept_through_the_message_path():
    """A mirror refusing a valid record costs speed only: the model decides, and the record is kept as sent."""
    rows = _generated_rows(5)
    offset, ts, key, value = rows[2]
    record = json.loads(value)
    urn = json.dumps({**record, "unique_id": f"urn:uuid:{record['unique_id']}"}).encode()
    PinRecord.model_validate_json(urn)  # the model accepts this spelling of a UUID, the mirror does not
    rows[2] = (offset, ts, key, urn)

    assert _fast(0, rows, VALIDATE) is None
    out = batch_lines(0, rows, VALIDATE)

    assert out.offsets == list(range(100, 105)) and out.quarantine_lines == []
    assert [json.loads(line) for line in out.lines] == _expected_lines(0, rows)
