"""The record contract: the real sample passes as it is, impossible values are named, Kafka key/value as specified."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from include.records import ENTITIES, KEY_FIELD, MODELS, GeoRecord, PinRecord, UserRecord, kafka_key, kafka_value
from tests.conftest import REAL_PIN_SAMPLE as SAMPLE

GEO = {"ind": 7, "timestamp": "2020-05-17 08:31:02", "latitude": -12.5, "longitude": 170, "country": "Peru"}
USER = {"ind": 7, "first_name": "Ana", "last_name": "Lima", "age": 31, "date_joined": "2016-02-01T10:00:00Z"}


def sample_rows() -> list[dict[str, object]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


def test_every_real_sample_row_validates_and_round_trips_unchanged() -> None:
    rows = sample_rows()
    assert len(rows) == 200
    for row in rows:
        pin = PinRecord.model_validate_json(json.dumps(row))
        assert json.loads(kafka_value(pin)) == row
        assert kafka_key("pin", pin) == str(row["unique_id"]).encode()


def test_poster_name_is_optional_and_kept_when_present() -> None:
    row = sample_rows()[0]
    assert "poster_name" not in json.loads(kafka_value(PinRecord.model_validate(row)))
    named = PinRecord.model_validate({**row, "poster_name": "Of Life and Lisa"})
    assert json.loads(kafka_value(named))["poster_name"] == "Of Life and Lisa"


def test_geo_and_user_are_keyed_by_ind() -> None:
    assert kafka_key("geo", GeoRecord.model_validate(GEO)) == b"7"
    assert kafka_key("user", UserRecord.model_validate(USER)) == b"7"
    assert json.loads(kafka_value(GeoRecord.model_validate(GEO))) == {**GEO, "longitude": 170.0}


@pytest.mark.parametrize(
    "text", ["2020-05-17T08:31:02+18:00", "2020-05-17T08:31:02-1800", "0001-01-01T00:00:00-00:30",
             "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59+05:00"],
)  # fmt: skip
def test_timestamps_at_the_limits_are_accepted(text: str) -> None:
    assert GeoRecord.model_validate_json(json.dumps({**GEO, "timestamp": text})).timestamp == text
    assert UserRecord.model_validate_json(json.dumps({**USER, "date_joined": text})).date_joined == text


@pytest.mark.parametrize(
    ("model", "record", "field"),
    [
        (GeoRecord, {**GEO, "latitude": 200}, "latitude"),
        (GeoRecord, {**GEO, "longitude": -181}, "longitude"),
        (GeoRecord, {**GEO, "latitude": "12"}, "latitude"),
        (GeoRecord, {**GEO, "timestamp": "not a time"}, "timestamp"),
        (GeoRecord, {**GEO, "timestamp": "1700000000"}, "timestamp"),
        (GeoRecord, {**GEO, "timestamp": "2020-05-17T08:31:02+18:01"}, "timestamp"),  # Spark reads up to ±18:00
        (GeoRecord, {**GEO, "timestamp": "2020-05-17T08:31:02-1900"}, "timestamp"),
        (GeoRecord, {**GEO, "timestamp": "9999-12-31T23:59:59-05:00"}, "timestamp"),  # year 10000 in UTC
        (UserRecord, {**USER, "date_joined": "0001-01-01T00:00:00+05:00"}, "date_joined"),  # year 0 in UTC
        (GeoRecord, {**GEO, "ind": 1.5}, "ind"),
        (UserRecord, {**USER, "age": -3}, "age"),
        (UserRecord, {**USER, "age": True}, "age"),
        (UserRecord, {**USER, "date_joined": "2016-02-30 10:00:00"}, "date_joined"),
        (UserRecord, {k: v for k, v in USER.items() if k != "last_name"}, "last_name"),
        (UserRecord, {**USER, "extra": 1}, "extra"),
    ],
)
def test_impossible_values_are_refused_naming_the_field(model: type, record: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate_json(json.dumps(record))
    assert [error["loc"] for error in refused.value.errors()] == [(field,)]


def test_every_entity_has_a_model_and_a_key_field_in_it() -> None:
    for entity in ENTITIES:
        assert KEY_FIELD[entity] in MODELS[entity].model_fields
