"""Pure pieces of the API: settings rules, producer options, path-to-entity, error shaping."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import ValidationError

from api.middleware import entity_of_path
from api.producer import OutgoingRecord, RecordProducer, producer_config
from api.records import field_errors
from api.settings import ApiSettings
from include.records import GeoRecord, PinRecord, kafka_key, kafka_value
from include.settings import PlatformSettings
from tests.api_process import REPO

SECRET = "k-TOPSECRET-" + "9e" * 8
BAD_TIMEOUTS = {"KAFKA_DELIVERY_TIMEOUT_MS": "500", "KAFKA_REQUEST_TIMEOUT_MS": "1000"}


def test_delivery_timeout_must_cover_linger_plus_one_request() -> None:
    with pytest.raises(ValidationError, match="KAFKA_DELIVERY_TIMEOUT_MS"):
        ApiSettings(KAFKA_DELIVERY_TIMEOUT_MS=500, KAFKA_REQUEST_TIMEOUT_MS=1000, KAFKA_LINGER_MS=2)


def test_an_empty_api_key_means_no_key_and_the_key_is_never_shown() -> None:
    assert ApiSettings(API_KEY="").api_key is None
    settings = ApiSettings(API_KEY="s3cr3t-value")
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(settings.model_dump())


@pytest.mark.parametrize("key", ["sécret-key", "two words", "tab\there", "line\nbreak"])
def test_an_api_key_that_is_not_printable_ascii_is_refused_without_showing_it(key: str) -> None:
    # a header value: clients send non-ASCII as UTF-8 or Latin-1, so such a key would match one client and not another
    with pytest.raises(ValidationError, match="API_KEY must be printable ASCII") as refused:
        ApiSettings(API_KEY=key)
    assert key not in str(refused.value)


def only_these_settings(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    """An environment holding no API setting but ``values`` (pydantic shortens a long input in its messages)."""
    for field in ApiSettings.model_fields.values():
        monkeypatch.delenv(str(field.validation_alias), raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_a_bad_setting_error_does_not_show_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    only_these_settings(monkeypatch, {"API_KEY": SECRET, **BAD_TIMEOUTS})
    with pytest.raises(ValidationError, match="KAFKA_DELIVERY_TIMEOUT_MS") as from_env:
        ApiSettings()
    monkeypatch.delenv("API_KEY")
    with pytest.raises(ValidationError, match="KAFKA_DELIVERY_TIMEOUT_MS") as from_arguments:
        ApiSettings(API_KEY=SECRET)
    assert SECRET[:8] not in str(from_env.value)
    assert SECRET[:8] not in str(from_arguments.value)


def test_the_api_refusing_bad_settings_does_not_print_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    only_these_settings(monkeypatch, {"API_KEY": SECRET, **BAD_TIMEOUTS})
    result = subprocess.run([sys.executable, "-m", "api"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "KAFKA_DELIVERY_TIMEOUT_MS" in result.stderr
    assert SECRET[:8] not in result.stdout + result.stderr


def test_a_record_whose_body_is_at_the_limit_fits_the_producer_request_size() -> None:
    settings = ApiSettings()
    pin = {"index": 2**63 - 1, "unique_id": str(uuid.uuid4()), "title": "", "description": "", "poster_name": "",
           "follower_count": "0", "tag_list": "", "is_image_or_video": "image", "image_src": "", "downloaded": 1,
           "save_location": "", "category": ""}  # fmt: skip
    compact = PinRecord.model_validate(pin).model_dump_json()
    pin["description"] = "d" * (settings.max_body_bytes - len(compact))
    body = PinRecord.model_validate(pin).model_dump_json()
    assert len(body) == settings.max_body_bytes
    record = PinRecord.model_validate_json(body)
    headers = [("request_id", b"r" * 64)]
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(kafka_key("pin", record), kafka_value(record), headers)
    assert size <= producer_config(settings)["max_request_size"]


@pytest.mark.parametrize("value", ["none", "None", ""])
def test_none_or_empty_compression_turns_compression_off(value: str) -> None:
    settings = ApiSettings(KAFKA_COMPRESSION=value)
    assert settings.kafka_compression is None
    assert producer_config(settings)["compression_type"] is None


# compose passes these through empty when .env does not set them (docker-compose.yaml): the API's own settings but
# KAFKA_COMPRESSION, and the lake's first day
EMPTY_MEANS_DEFAULT = sorted(
    {str(f.validation_alias) for n, f in ApiSettings.model_fields.items() if n not in PlatformSettings.model_fields}
    - {"KAFKA_COMPRESSION"}
    | {"LAKE_FIRST_DAY"}
)


@pytest.mark.parametrize("variable", EMPTY_MEANS_DEFAULT)
def test_an_empty_optional_variable_takes_its_default(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``API_WORKERS=`` in an env file must not stop the API: empty counts as unset."""
    [(name, field)] = [(n, f) for n, f in ApiSettings.model_fields.items() if f.validation_alias == variable]
    monkeypatch.setenv(variable, "")
    assert getattr(ApiSettings(), name) == field.default
    monkeypatch.delenv(variable)
    assert getattr(ApiSettings(**{name: ""}), name) == field.default  # by field name too


@pytest.mark.parametrize("variable", ["KAFKA_BOOTSTRAP_SERVERS", "PINTEREST_TOPIC_PREFIX", "LAKE_BUCKET"])
def test_an_empty_location_is_refused_not_defaulted(variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty Kafka address, topic prefix or bucket is a mistake to name, not a wish for the local default."""
    monkeypatch.setenv(variable, "")
    with pytest.raises(ValidationError, match=variable):
        ApiSettings()


def test_an_unknown_compression_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="KAFKA_COMPRESSION"):
        ApiSettings(KAFKA_COMPRESSION="brotli")


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


class _Metadata:
    def __init__(self, known: bool) -> None:
        self._known = known

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0} if self._known else None


class _Future:
    def add_callback(self, _callback: object) -> None:
        pass

    def add_errback(self, _errback: object) -> None:
        pass


class _ThreadNotingProducer:
    """Stands in for KafkaProducer: knows a topic's partitions or not, and notes the thread each send runs on."""

    def __init__(self, knows_partitions: bool) -> None:
        self._metadata = _Metadata(knows_partitions)
        self.sent_on: list[int] = []

    def send(self, *_args: object, **_kwargs: object) -> _Future:
        self.sent_on.append(threading.get_ident())
        return _Future()


@pytest.mark.parametrize("knows_partitions", [True, False])
def test_a_send_that_could_wait_for_metadata_runs_off_the_event_loop(knows_partitions: bool) -> None:
    """kafka-python's send waits up to KAFKA_MAX_BLOCK_MS for a topic whose partitions it does not know: such a
    send runs in a worker thread; one that appends to the buffer at once runs on the loop."""
    fake = _ThreadNotingProducer(knows_partitions)
    record = OutgoingRecord(topic="t.geo", key=b"1", value=b"{}", timestamp_ms=0, headers=[])

    async def send() -> int:
        producer = RecordProducer(ApiSettings(), ["t.geo"])
        await producer._send(asyncio.get_running_loop(), fake, record)  # type: ignore[arg-type]
        return threading.get_ident()

    loop_thread = asyncio.run(send())

    assert len(fake.sent_on) == 1
    assert (fake.sent_on[0] == loop_thread) is knows_partitions
