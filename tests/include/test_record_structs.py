"""The msgspec mirrors never accept what the pydantic models refuse, and count the same fields set."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, ValidationError

from include.emulator.generate import generate_triples
from include.record_structs import STRUCTS, TIMESTAMP_FIELDS, fields_set_counter
from include.records import ENTITIES, MODELS, _parseable_timestamp
from tests.conftest import REAL_PIN_SAMPLE

TRIPLES = list(generate_triples(11, 200, repeat_percent=0))
VALID: dict[str, list[dict[str, Any]]] = {
    "pin": [t.pin.model_dump(mode="json", exclude_none=True) for t in TRIPLES]
    + [json.loads(line) for line in REAL_PIN_SAMPLE.read_text().splitlines()],
    "geo": [t.geo.model_dump(mode="json") for t in TRIPLES],
    "user": [t.user.model_dump(mode="json") for t in TRIPLES],
}

# values near the edges of what each field type takes, in JSON
# fmt: off
TRICKY: list[Any] = [
    None, True, False, 0, -1, 1, 2, -0.0, 1.0, 1.5, 1e2, -90, 90, 90.0000001, -90.5, 180, -180, 180.5, -180.0000001,
    150, 151, 2**63 - 1, 2**63, 2**64, -(2**63), 1e308, float("inf"), float("nan"), [], [1], {}, {"a": 1}, "", " ",
    "1", "0", "1.0", "true", "null", "x", "\u0000", "\ud800", "\ud83d\ude00", "\u00e9",
    "12345678-1234-1234-1234-123456789012", "12345678-1234-1234-1234-12345678901", "12345678123412341234123456789012",
    "ABCDEF01-1234-1234-1234-123456789012", "{12345678-1234-1234-1234-123456789012}",
    "urn:uuid:12345678-1234-1234-1234-123456789012", "12345678-1234-1234-1234-123456789012 ",
    "2020-05-17 08:31:02", "2020-05-17T08:31:02Z", "2020-05-17", "2020-05-17T08:31:02+18:00",
    "2020-05-17T08:31:02+18:01", "2020-05-17T08:31:02-18:00", "2020-02-30 00:00:00", "2020-05-17 24:00:00",
    "2020-05-17T08:31:02.123456789Z", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00-01:00",
    "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59+01:00", " 2020-05-17 08:31:02", "2020-05-17 08:31:02 ",
    "1700000000", "2020-05-17X08:31:02", "20200517T083102Z", "2020-05-17T08:31", "2020-05-17T08:31:02+0100",
]
# JSON texts that json.dumps cannot write: number forms, escapes and bytes a parser may treat differently
TRICKY_TEXT: list[bytes] = [
    b"1E2", b"-0", b"01", b"1.", b".5", b"+1", b"1e-400", b"1e400", b"NaN", b"Infinity", b"-Infinity",
    b"9223372036854775807", b"9223372036854775808", b"00", b"0x1", b'"\\ud800"', b'"\\udc00\\ud800"',
    b'"\\ud800\\u0041"', b'"\\ud83d\\ude00"', b'"\\u0000"', b'"\\x41"', b'"\\/"', b'"a\tb"', b'"a\x01b"',
    b'"\xff"', b'"\xc3\xa9"', b'"\xed\xa0\x80"', b'"\xf4\x90\x80\x80"', b'"\xc0\xaf"', b"true ", b"nul",
    # pydantic's parser refuses a number whose integer part has more than 4,300 digits; msgspec reads it
    b"1" + b"0" * 4299 + b"e-4299", b"1" + b"0" * 4300 + b"e-4300", b"-" + b"9" * 4301 + b"e-4300",
    b"0." + b"1" * 6000, b"1e" + b"0" * 5000 + b"1", b"1" * 5000,
]
# fmt: on


def _model_count(entity: str, value: bytes) -> int | None:
    """The fields the model sets from ``value``, or None when it refuses it."""
    try:
        return len(MODELS[entity].model_validate_json(value).model_fields_set)
    except ValidationError:
        return None


def _mirror_count(entity: str, value: bytes) -> int | None:
    try:
        return fields_set_counter(entity)([value])
    except ValueError:
        return None


def _assert_no_wider(entity: str, value: bytes) -> bool:
    """Whatever the mirror accepts, the model accepts with the same fields set; returns whether it accepted."""
    mirrored = _mirror_count(entity, value)
    if mirrored is not None:
        assert _model_count(entity, value) == mirrored, value
    return mirrored is not None


@pytest.mark.parametrize("entity", ENTITIES)
def test_each_mirror_has_the_models_fields_required_as_in_the_model(entity):
    fields = MODELS[entity].model_fields
    struct = STRUCTS[entity]
    required = len(struct.__struct_fields__) - len(struct.__struct_defaults__)
    assert set(struct.__struct_fields__) == set(fields)
    assert set(struct.__struct_fields__[:required]) == {name for name, f in fields.items() if f.is_required()}
    stamps = {
        name
        for name, f in fields.items()
        if any(isinstance(m, AfterValidator) and m.func is _parseable_timestamp for m in f.metadata)
    }
    assert set(TIMESTAMP_FIELDS[entity]) == stamps


@pytest.mark.parametrize("entity", ENTITIES)
def test_the_mirror_accepts_every_valid_record_the_platform_writes(entity):
    """The quick path is taken for what the API produces (the model's own JSON) and for the real sample."""
    for record in VALID[entity]:
        value = MODELS[entity].model_validate(record).model_dump_json(exclude_none=True).encode()
        assert _mirror_count(entity, value) == _model_count(entity, value) == len(record), value
        raw = json.dumps(record, ensure_ascii=False).encode()
        assert _mirror_count(entity, raw) == len(record), raw


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_field_with_every_tricky_value(entity):
    base = VALID[entity][0]
    accepted = refused = 0
    for name in [*base, "extra"]:
        for tricky in TRICKY:
            value = json.dumps({**base, name: tricky}).encode()
            accepted, refused = (accepted + 1, refused) if _assert_no_wider(entity, value) else (accepted, refused + 1)
        for text in TRICKY_TEXT:
            value = json.dumps({**base, name: "@"}).encode().replace(b'"@"', text)
            accepted, refused = (accepted + 1, refused) if _assert_no_wider(entity, value) else (accepted, refused + 1)
        _assert_no_wider(entity, json.dumps({k: v for k, v in base.items() if k != name}).encode())
    assert accepted > 20 and refused > 200  # both sides of the line were crossed


@pytest.mark.parametrize("entity", ENTITIES)
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_records(entity, data):
    """A valid record with fields replaced, removed or added, or one byte of its JSON changed."""
    record = dict(data.draw(st.sampled_from(VALID[entity])))
    values = st.one_of(
        st.sampled_from(TRICKY), st.integers(), st.floats(), st.text(), st.booleans(), st.none(),
        st.lists(st.integers(), max_size=2),
    )  # fmt: skip
    for name in data.draw(st.lists(st.sampled_from([*record, "extra", "Index", "ind"]), max_size=3)):
        if data.draw(st.booleans()):
            record.pop(name, None)
        else:
            record[name] = data.draw(values)
    value = json.dumps(record, ensure_ascii=data.draw(st.booleans())).encode("utf-8", "surrogatepass")
    if data.draw(st.booleans()):
        at = data.draw(st.integers(0, len(value) - 1))
        value = value[:at] + bytes([data.draw(st.integers(0, 255))]) + value[at + 1 :]
    _assert_no_wider(entity, value)


@pytest.mark.parametrize("entity", ENTITIES)
def test_a_batch_counts_the_fields_of_all_its_values_and_one_refused_value_refuses_it(entity):
    values = [json.dumps(record).encode() for record in VALID[entity][:30]]
    expected = sum(_model_count(entity, value) for value in values)  # type: ignore[misc]
    count = fields_set_counter(entity)
    assert count(values) == expected
    refused = json.dumps({**VALID[entity][0], "extra": 1}).encode()
    with pytest.raises(ValueError):
        count([*values, refused])
