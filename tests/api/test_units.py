"""Pure pieces of the API: settings rules, producer options, path-to-entity, error shaping."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.middleware import entity_of_path
from api.producer import producer_config
from api.records import field_errors
from api.settings import ApiSettings
from include.records import GeoRecord


def test_delivery_timeout_must_cover_linger_plus_one_request() -> None:
    with pytest.raises(ValidationError, match="KAFKA_DELIVERY_TIMEOUT_MS"):
        ApiSettings(KAFKA_DELIVERY_TIMEOUT_MS=500, KAFKA_REQUEST_TIMEOUT_MS=1000, KAFKA_LINGER_MS=2)


def test_an_empty_api_key_means_no_key_and_the_key_is_never_shown() -> None:
    assert ApiSettings(API_KEY="").api_key is None
    settings = ApiSettings(API_KEY="s3cr3t-value")
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(settings.model_dump())


def test_producer_is_durable_and_fails_fast() -> None:
    config = producer_config(ApiSettings(KAFKA_BOOTSTRAP_SERVERS="a:9092,b:9092"))
    assert config["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert (config["acks"], config["enable_idempotence"]) == ("all", True)
    assert config["delivery_timeout_ms"] <= 2000
    assert config["max_block_ms"] <= 2000


@pytest.mark.parametrize(
    ("path", "entity"), [("/pin/", "pin"), ("/geo/batch", "geo"), ("/user", "user"), ("/metrics", "-"), ("/", "-")]
)
def test_entity_of_path(path: str, entity: str) -> None:
    assert entity_of_path(path) == entity


def test_field_errors_name_the_field_and_do_not_echo_the_input() -> None:
    with pytest.raises(ValidationError) as refused:
        GeoRecord.model_validate({"ind": 1, "timestamp": "2020-01-01", "latitude": 95.5, "longitude": 0, "country": ""})
    errors = field_errors(refused.value.errors(include_input=False, include_url=False), (3,))
    assert [(e.field, e.loc, e.type) for e in errors] == [("latitude", ["body", 3, "latitude"], "less_than_equal")]
    assert "95.5" not in errors[0].model_dump_json()
