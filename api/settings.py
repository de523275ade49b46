"""Settings of the ingest API, read from the environment (on top of the platform settings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from kafka import codec
from pydantic import Field, SecretStr, field_validator, model_validator

from include.settings import PlatformSettings

Compression = Literal["gzip", "snappy", "lz4", "zstd"]
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
"""The levels uvicorn takes (it has no ``warn``)."""

CODEC_PACKAGES: dict[str, tuple[Callable[[], bool], str]] = {
    "gzip": (codec.has_gzip, "the standard library"),
    "snappy": (codec.has_snappy, "python-snappy"),
    "lz4": (codec.has_lz4, "lz4"),
    "zstd": (codec.has_zstd, "zstandard"),
}
"""Whether kafka-python can use each codec here, and the package it needs."""


class ApiSettings(PlatformSettings):
    """Where the API listens, what it accepts and how it talks to Kafka.

    The Kafka timeouts are sized so that an unreachable Kafka turns into a 503
    within ``ack_wait_s`` (``kafka_delivery_timeout_ms`` + 150 ms, 1.95 s by
    default) instead of the client library's 60 s default block.
    """

    host: str = Field("127.0.0.1", validation_alias="API_HOST")
    port: int = Field(8000, ge=1, le=65535, validation_alias="API_PORT")
    workers: int = Field(1, ge=1, validation_alias="API_WORKERS")
    log_level: LogLevel = Field("info", validation_alias="API_LOG_LEVEL")
    api_key: SecretStr | None = Field(None, validation_alias="API_KEY")
    max_body_bytes: int = Field(1_048_576, ge=1024, validation_alias="API_MAX_BODY_BYTES")
    batch_max_records: int = Field(500, ge=1, validation_alias="API_BATCH_MAX_RECORDS")
    retry_after_s: int = Field(2, ge=1, validation_alias="API_RETRY_AFTER_S")
    max_requests_in_flight: int = Field(512, ge=1, validation_alias="API_MAX_REQUESTS_IN_FLIGHT")
    kafka_compression: Compression | None = Field("zstd", validation_alias="KAFKA_COMPRESSION")
    kafka_linger_ms: int = Field(2, ge=0, validation_alias="KAFKA_LINGER_MS")
    kafka_batch_bytes: int = Field(262_144, ge=1024, validation_alias="KAFKA_BATCH_BYTES")
    kafka_request_timeout_ms: int = Field(1_000, ge=100, validation_alias="KAFKA_REQUEST_TIMEOUT_MS")
    kafka_delivery_timeout_ms: int = Field(1_800, ge=100, validation_alias="KAFKA_DELIVERY_TIMEOUT_MS")
    kafka_max_block_ms: int = Field(1_000, ge=10, validation_alias="KAFKA_MAX_BLOCK_MS")
    kafka_connect_retry_s: float = Field(2.0, gt=0, validation_alias="KAFKA_CONNECT_RETRY_S")

    # the API's optional settings, passed through from .env by compose (KAFKA_COMPRESSION is not: empty turns it off)
    empty_is_unset: ClassVar[frozenset[str]] = PlatformSettings.empty_is_unset | {
        "API_HOST",
        "API_PORT",
        "API_WORKERS",
        "API_LOG_LEVEL",
        "API_KEY",
        "API_MAX_BODY_BYTES",
        "API_BATCH_MAX_RECORDS",
        "API_RETRY_AFTER_S",
        "API_MAX_REQUESTS_IN_FLIGHT",
        "KAFKA_LINGER_MS",
        "KAFKA_BATCH_BYTES",
        "KAFKA_REQUEST_TIMEOUT_MS",
        "KAFKA_DELIVERY_TIMEOUT_MS",
        "KAFKA_MAX_BLOCK_MS",
        "KAFKA_CONNECT_RETRY_S",
    }

    @field_validator("kafka_compression", mode="before")
    @classmethod
    def _none_or_empty_means_off(cls, codec: object) -> object:
        """``KAFKA_COMPRESSION=none`` (any case) or empty turns compression off."""
        return None if isinstance(codec, str) and codec.strip().lower() in ("", "none") else codec

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, level: object) -> object:
        """``API_LOG_LEVEL=DEBUG`` works as ``debug`` does."""
        return level.strip().lower() if isinstance(level, str) else level

    @field_validator("kafka_compression", mode="after")
    @classmethod
    def _codec_installed(cls, name: Compression | None) -> Compression | None:
        """Refuse a codec kafka-python cannot use here at start, not at the first connection (whose error the
        producer would only retry)."""
        if name is not None:
            available, package = CODEC_PACKAGES[name]
            if not available():
                raise ValueError(f"KAFKA_COMPRESSION {name!r} needs the package {package}, which is not installed")
        return name

    @field_validator("api_key", mode="after")
    @classmethod
    def _printable_key_or_none(cls, key: SecretStr | None) -> SecretStr | None:
        """An empty key turns the check off; a key must be printable ASCII, as clients send header values
        differently (UTF-8 or Latin-1) once they leave it."""
        if key is None or not key.get_secret_value():
            return None
        if not all(" " < char <= "~" for char in key.get_secret_value()):
            raise ValueError("API_KEY must be printable ASCII without blanks (it is sent as an HTTP header)")
        return key

    @model_validator(mode="after")
    def _delivery_covers_one_request(self) -> ApiSettings:
        if self.kafka_delivery_timeout_ms < self.kafka_linger_ms + self.kafka_request_timeout_ms:
            raise ValueError("KAFKA_DELIVERY_TIMEOUT_MS must be at least KAFKA_LINGER_MS + KAFKA_REQUEST_TIMEOUT_MS")
        return self

    @property
    def ack_wait_s(self) -> float:
        """How long a request waits for Kafka's answer before it gives up with 503.

        ``kafka_delivery_timeout_ms`` + 150 ms: a little longer than kafka-python's own
        delivery timeout, so that its error usually arrives before the API stops waiting.
        """
        return (self.kafka_delivery_timeout_ms + 150) / 1000
