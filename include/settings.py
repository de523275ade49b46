"""Platform-wide settings read from the environment (one place for every name)."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from include.lake import S3_BUCKET_PATTERN
from include.records import Entity
from include.topics import check_topic_prefix, topic_name

# botocore signs the SHA-256 of every upload body on a plain-http endpoint (the local MinIO), which costs as
# much CPU as the drain's own checksum; the CRC32 checksum of each request already guards the bytes.
S3_CLIENT_CONFIG: dict[str, Any] = {"s3": {"payload_signing_enabled": False}}


class PlatformSettings(BaseSettings):
    """Where Kafka and the lake are, and how topics are named."""

    # hide_input_in_errors: a failed validation must not echo the environment (API_KEY, AWS_SECRET_ACCESS_KEY).
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)
    # optional variables that an env file or compose may pass through empty: empty means unset (the default: no S3
    # endpoint is AWS's own, no keys is boto3's and s3a's own lookup). An empty required location (Kafka, the
    # bucket, topics) is not one: its own check refuses it.
    empty_is_unset: ClassVar[frozenset[str]] = frozenset(
        {"LAKE_FIRST_DAY", "S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    )

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1, validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    topic_prefix: str = Field("pinterest", validation_alias="PINTEREST_TOPIC_PREFIX")
    topic_partitions: int = Field(3, ge=1, validation_alias="KAFKA_TOPIC_PARTITIONS")
    lake_bucket: str = Field("pinterest-lake", validation_alias="LAKE_BUCKET")
    # The lake's first day (ISO date): the analytics of a day need every day from it, and read none before it.
    # Unset (or empty), they need every day from the first day any entity drained, which misses earlier days drained
    # after later ones (a backfill run backwards, or a first day whose drain is retried while later days run).
    lake_first_day: date | None = Field(None, validation_alias="LAKE_FIRST_DAY")
    s3_endpoint_url: str | None = Field(None, validation_alias="S3_ENDPOINT_URL")
    aws_access_key_id: SecretStr | None = Field(None, validation_alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: SecretStr | None = Field(None, validation_alias="AWS_SECRET_ACCESS_KEY")
    aws_region: str = Field("us-east-1", validation_alias="AWS_DEFAULT_REGION")

    @field_validator("topic_prefix")
    @classmethod
    def _kafka_topic_prefix(cls, value: str) -> str:
        """Every ``<prefix>.<entity>`` must be a topic name Kafka accepts."""
        return check_topic_prefix(value)

    @field_validator("lake_bucket")
    @classmethod
    def _s3_bucket_name(cls, value: str) -> str:
        """The lake's bucket must follow S3's naming rules (checked here, before any request is made)."""
        if not re.search(S3_BUCKET_PATTERN, value):
            raise ValueError(
                f"LAKE_BUCKET {value!r} is not an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, a "
                "letter or digit at each end, no '..', not an IP address, no reserved prefix (xn--, sthree-, "
                "amzn-s3-demo-) or suffix (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, values: Any) -> Any:
        """An empty optional variable (``empty_is_unset``, by variable or field name) means its default:
        ``API_WORKERS=`` in an env file, or one that compose passes through empty when neither .env nor the shell
        sets it."""
        if not isinstance(values, dict):
            return values
        fields = {name for name, field in cls.model_fields.items() if field.validation_alias in cls.empty_is_unset}
        optional = cls.empty_is_unset | fields
        return {name: value for name, value in values.items() if value != "" or name not in optional}

    def topic(self, entity: Entity) -> str:
        """Kafka topic of an entity, e.g. ``pinterest.pin``."""
        return topic_name(self.topic_prefix, entity)

    def s3_client(self) -> Any:
        """A boto3 S3 client on the lake's endpoint (keys from the settings, else boto3's own lookup)."""
        import boto3
        from botocore.config import Config

        def reveal(secret: SecretStr | None) -> str | None:
            return secret.get_secret_value() if secret else None

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint_url,
            region_name=self.aws_region,
            aws_access_key_id=reveal(self.aws_access_key_id),
            aws_secret_access_key=reveal(self.aws_secret_access_key),
            config=Config(**S3_CLIENT_CONFIG),
        )


@lru_cache
def platform_settings() -> PlatformSettings:
    """The process-wide settings, read once."""
    return PlatformSettings()
