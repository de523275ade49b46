"""The msgspec mirrors never accept what the pydantic models refuse, and count the same fields set."""

from __future__ import annotations

import json
import uuid
from dataclasses import fields
from typing import Annotated, Any

import annotated_types
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator, AllowInfNan, BaseModel, Field, Strict, ValidationError, field_validator
from pydantic.fields import FieldInfo

from include.emulator.generate import generate_triples
from include.record_structs import STRUCTS, TIMESTAMP_FIELDS, fields_set_counter
from include.records import ENTITIES, MODELS, Timestamp, _parseable_timestamp
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


# the msgspec type a mirror gives each annotation of the models
MIRROR_TYPES: dict[Any, Any] = {
    int: msgspec.inspect.IntType,
    float: msgspec.inspect.FloatType,
    str: msgspec.inspect.StrType,
    uuid.UUID: msgspec.inspect.UUIDType,
    str | None: msgspec.inspect.UnionType,
}
# a timestamp field's mirror checks it with the model's own Timestamp type, so it has all of its rules
TIMESTAMP_RULES = FieldInfo.from_annotation(Timestamp).metadata
# rules a mirror applies by its type alone: msgspec reads neither a float nor a bool as an int, nor NaN or Infinity
BY_TYPE = (Strict(True), AllowInfNan(False))


def _rules_the_mirror_lacks(model: type[BaseModel], struct: type[msgspec.Struct], timestamps: set[str]) -> list[str]:
    """Every rule of ``model`` that ``struct``, checking ``timestamps`` as the model does, lacks, by name."""
    decorators = model.__pydantic_decorators__
    lacking = [f"{f.name} {sorted(found)}" for f in fields(decorators) if (found := getattr(decorators, f.name))]
    if model.model_config.get("extra") != "forbid" or not struct.__struct_config__.forbid_unknown_fields:
        lacking.append("unknown fields are not refused by both")
    mirrored = {f.name: f.type for f in msgspec.inspect.type_info(struct).fields}
    for name, info in model.model_fields.items():
        lacking += [f"{name}: {rule}" for rule in _field_rules_lacking(info, mirrored.get(name), name in timestamps)]
    return lacking


def _field_rules_lacking(info: FieldInfo, mirrored: Any, is_timestamp: bool) -> list[str]:
    if is_timestamp:
        return [] if (info.annotation, info.metadata) == (str, TIMESTAMP_RULES) else [f"{info.metadata}"]
    if not isinstance(mirrored, MIRROR_TYPES.get(info.annotation, ())):
        return [f"{info.annotation} mirrored as {mirrored}"]
    lacking = []
    for rule in info.metadata:
        if isinstance(rule, annotated_types.Ge | annotated_types.Le):
            bound = "ge" if isinstance(rule, annotated_types.Ge) else "le"
            if getattr(mirrored, bound) != getattr(rule, bound):
                lacking.append(f"{rule} mirrored as {bound}={getattr(mirrored, bound)}")
        elif rule not in BY_TYPE:
            lacking.append(f"{rule}")
    return lacking


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_rule_of_the_model_is_one_its_mirror_applies(entity):
    """A rule added to a model (a bound, a pattern, a validator) fails here until its mirror applies it too."""
    assert _rules_the_mirror_lacks(MODELS[entity], STRUCTS[entity], set(TIMESTAMP_FIELDS[entity])) == []


def test_a_rule_only_the_model_has_is_named():
    class StricterGeo(MODELS["geo"]):  # type: ignore[misc, valid-type]
        country: Annotated[str, Field(max_length=3)]

        @field_validator("country")
        @classmethod
        def _known(cls, value: str) -> str:
            return value

    geo = STRUCTS["geo"]
    assert _rules_the_mirror_lacks(StricterGeo, geo, {"timestamp"}) == [
        "field_validators ['_known']",
        "country: MaxLen(max_length=3)",
    ]
    assert _rules_the_mirror_lacks(MODELS["geo"], geo, set()) == [f"timestamp: {rule}" for rule in TIMESTAMP_RULES]
    looser = msgspec.defstruct("Looser", [("ind", int), ("latitude", float), ("country", int)])
    assert _rules_the_mirror_lacks(MODELS["geo"], looser, {"timestamp"}) == [
        "unknown fields are not refused by both",
        "ind: Ge(ge=0) mirrored as ge=None",
        "ind: Le(le=9223372036854775807) mirrored as le=None",
        "latitude: Ge(ge=-90) mirrored as ge=None",
        "latitude: Le(le=90) mirrored as le=None",
        "longitude: <class 'float'> mirrored as None",
        "country: <class 'str'> mirrored as IntType(gt=None, ge=None, lt=None, le=None, multiple_of=None)",
    ]


@pytest.mark.parametrize("entity", ENTITIES)
def test_the_mirror_accepts_every_valid_record_the_platform_writes(entity):
    """The quick path is taken for what the API produces (the model's own JSON) and for the real sample."""
    assert len(VALID[entity]) >= 200
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
