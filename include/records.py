"""The record contract: one pydantic model per entity, the single source of truth.

The API validates with these models, the drain and the emulator use them, and
the Spark schemas are checked against them by a test. They validate types and
structure, not content: messy values such as ``"User Info Error"`` are data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

Entity = Literal["pin", "geo", "user"]
ENTITIES: tuple[Entity, ...] = get_args(Entity)

_DATETIME = TypeAdapter(datetime)


MAX_UTC_OFFSET = timedelta(hours=18)
"""The widest offset Spark (Java's ZoneOffset) reads; beyond it the cleaned timestamp would be null."""


def _parseable_timestamp(value: str) -> str:
    """Accept ``YYYY-MM-DD HH:MM:SS`` or ISO-8601, keep the text as sent.

    An offset must be within ±18:00, and the moment in UTC within years 1 to 9999: the cleaning reads the text
    with Spark, which cannot read a wider offset, and the lake's timestamps are UTC.
    """
    moment = _DATETIME.validate_python(value)
    offset = moment.utcoffset()
    if offset is not None:
        if abs(offset) > MAX_UTC_OFFSET:
            raise ValueError("the UTC offset must be within ±18:00")
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ValueError("the moment in UTC must be within the years 1 to 9999") from None
    return value


# Record ids are Spark LongType columns: a larger value would be read back as null.
RecordId = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]
# The leading date pattern refuses what the datetime parser alone would take (epoch numbers such as "1700000000").
Timestamp = Annotated[
    str,
    Field(pattern=r"^\d{4}-\d{2}-\d{2}", examples=["2020-05-17 08:31:02", "2020-05-17T08:31:02Z"]),
    AfterValidator(_parseable_timestamp),
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PinRecord(_Record):
    """A pin as posted by the original clients (``index`` becomes ``ind`` when cleaned)."""

    index: RecordId
    unique_id: UUID
    title: str
    description: str
    poster_name: str | None = None
    follower_count: str
    tag_list: str
    is_image_or_video: str
    image_src: str
    downloaded: Annotated[int, Field(strict=True, ge=0, le=1)]
    save_location: str
    category: str


class GeoRecord(_Record):
    """Where and when a pin was posted."""

    ind: RecordId
    timestamp: Timestamp
    latitude: Annotated[float, Field(strict=True, ge=-90, le=90, allow_inf_nan=False)]
    longitude: Annotated[float, Field(strict=True, ge=-180, le=180, allow_inf_nan=False)]
    country: str


class UserRecord(_Record):
    """The user who posted a pin."""

    ind: RecordId
    first_name: str
    last_name: str
    age: Annotated[int, Field(strict=True, ge=0, le=150)]
    date_joined: Timestamp


Record = PinRecord | GeoRecord | UserRecord

MODELS: dict[Entity, type[_Record]] = {"pin": PinRecord, "geo": GeoRecord, "user": UserRecord}
KEY_FIELD: dict[Entity, str] = {"pin": "unique_id", "geo": "ind", "user": "ind"}


def kafka_key(entity: Entity, record: Record) -> bytes:
    """The Kafka message key of a record: ``unique_id`` for pins, ``ind`` otherwise."""
    return str(getattr(record, KEY_FIELD[entity])).encode()


def kafka_value(record: Record) -> bytes:
    """The Kafka message value: the validated record as compact JSON."""
    return record.model_dump_json(exclude_none=True).encode()
