"""msgspec mirrors of the record models: the drain's quick acceptance of a Kafka value.

The pydantic models in ``include.records`` stay the contract. A mirror is stricter or equal: every value it
accepts, its model accepts with the same fields set (``tests/include/test_record_structs.py`` checks this on
generated and mutated values). A value a mirror refuses is not refused for that: the drain then asks the model,
which decides and names the reason. Decoding a pin this way takes about a third of the model's time.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Annotated

import msgspec
from pydantic import TypeAdapter

from include.records import Entity, Timestamp

RecordId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
_UNSET = msgspec.UNSET
_TIMESTAMPS = TypeAdapter(list[Timestamp])
# pydantic's JSON parser refuses a number whose integer part has more than 4,300 digits, msgspec reads it as a float:
# a value of an entity with float fields that holds a run of over 100 digits (anywhere: simpler) is left to the model
_LONG_DIGIT_RUN = re.compile(rb"[0-9]{101}").search


class _Mirror(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    pass


class PinStruct(_Mirror):
    index: RecordId
    unique_id: uuid.UUID
    title: str
    description: str
    follower_count: str
    tag_list: str
    is_image_or_video: str
    image_src: str
    downloaded: Annotated[int, msgspec.Meta(ge=0, le=1)]
    save_location: str
    category: str
    poster_name: str | msgspec.UnsetType | None = _UNSET


class GeoStruct(_Mirror):
    ind: RecordId
    timestamp: str
    latitude: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    longitude: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    country: str


class UserStruct(_Mirror):
    ind: RecordId
    first_name: str
    last_name: str
    age: Annotated[int, msgspec.Meta(ge=0, le=150)]
    date_joined: str


STRUCTS: dict[Entity, type[_Mirror]] = {"pin": PinStruct, "geo": GeoStruct, "user": UserStruct}
TIMESTAMP_FIELDS: dict[Entity, tuple[str, ...]] = {"pin": (), "geo": ("timestamp",), "user": ("date_joined",)}

FieldCounter = Callable[[Sequence[bytes]], int]
"""How many fields the values set in all; raises ValueError when the mirror does not accept one of them."""


def fields_set_counter(entity: Entity) -> FieldCounter:
    """A ``FieldCounter`` for ``entity``: decodes each value with its mirror, checks timestamps as the model does."""
    struct = STRUCTS[entity]
    decode = msgspec.json.Decoder(struct).decode
    required = len(struct.__struct_fields__) - len(struct.__struct_defaults__)
    optional = [attrgetter(name) for name in struct.__struct_fields__[required:]]  # fields with a default come last
    stamps = [attrgetter(name) for name in TIMESTAMP_FIELDS[entity]]
    has_floats = any(isinstance(f.type, msgspec.inspect.FloatType) for f in msgspec.inspect.type_info(struct).fields)

    def count(values: Sequence[bytes]) -> int:
        if has_floats and any(map(_LONG_DIGIT_RUN, values)):
            raise ValueError("a run of over 100 digits: the model's parser decides")
        records = list(map(decode, values))  # value by value: a joined array could hide a value that is no object
        for stamp in stamps:
            _TIMESTAMPS.validate_python(list(map(stamp, records)))
        return required * len(records) + sum(len(records) - list(map(get, records)).count(_UNSET) for get in optional)

    return count
