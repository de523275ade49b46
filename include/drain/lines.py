"""Turning a batch of Kafka messages into raw-zone lines and quarantine lines (pure functions).

A record line is ``{"partition","offset","timestamp","key","value"}`` with the value as sent
(compacted onto one line if it spans several). A message whose value is missing or not a
valid record of the entity, names a key twice, or whose key is not UTF-8, becomes a quarantine
line instead. (pydantic keeps the last of two equal keys; Spark fails on the first when its type
is wrong, so such a value would stop the cleaning of its day.)
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from include.json_keys import keys_counted_once, refuse_duplicate_keys
from include.record_structs import FieldCounter, fields_set_counter
from include.records import MODELS, Entity

MAX_REASON_CHARS = 500
# printable ASCII except '"' and '\\': such bytes are a JSON string as they are
_PLAIN_KEY = re.compile(rb"[ !#-\[\]-~]*").fullmatch

Row = tuple[int, int, bytes | None, bytes | None]
"""One message: offset, timestamp (ms), key, value."""

_LINE = b'{"partition":%d,"offset":%d,"timestamp":%d,"key":%b,"value":%b}\n'
_LINE_OF_PLAIN_KEY = _LINE.replace(b'"key":%b', b'"key":"%b"')  # the key's bytes go between the quotes


@dataclass(frozen=True)
class Validator:
    """How an entity's values are checked: ``count_fields`` (its msgspec mirror) accepts most values quickly and
    raises ValueError on any other; ``record`` (its pydantic model's ``validate_json``) decides those and names
    what is wrong, raising ``ValidationError``."""

    count_fields: FieldCounter
    record: Callable[[bytes], BaseModel]


def validator(entity: Entity) -> Validator:
    """The ``Validator`` of ``entity``'s values."""
    return Validator(fields_set_counter(entity), MODELS[entity].__pydantic_validator__.validate_json)


@dataclass
class BatchLines:
    """What a batch becomes: record lines with their offsets, and quarantine lines with theirs."""

    offsets: list[int] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    quarantine_offsets: list[int] = field(default_factory=list)
    quarantine_lines: list[bytes] = field(default_factory=list)


def key_json(key: bytes | None) -> bytes:
    """The Kafka key as a JSON string (or null); raises UnicodeDecodeError when it is not UTF-8."""
    if key is None:
        return b"null"
    if _PLAIN_KEY(key):
        return b'"' + key + b'"'
    return json.dumps(key.decode()).encode()


def compact(value: bytes) -> bytes:
    """The value on a single line (JSON strings hold no raw newline, so only whitespace changes)."""
    return json.dumps(json.loads(value), ensure_ascii=False, separators=(",", ":")).encode()


def record_line(partition: int, offset: int, timestamp: int, key: bytes, value: bytes) -> bytes:
    """A raw-zone line; ``key`` is already JSON (see ``key_json``), ``value`` a one-line JSON object."""
    return _LINE % (partition, offset, timestamp, key, value)


def _exact(name: str, raw: bytes | None) -> dict[str, str | None]:
    """``raw`` as ``{name: text}`` (null when absent), or as ``{name_base64: …}`` when it is not UTF-8, so that a
    quarantined message keeps its exact bytes."""
    if raw is None:
        return {name: None}
    try:
        return {name: raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(raw).decode("ascii")}


def quarantine_line(
    partition: int, offset: int, timestamp: int, key: bytes | None, value: bytes | None, reason: str
) -> bytes:
    """A quarantined message: its coordinates, its exact key and value (see ``_exact``), and why it was rejected."""
    line = {"partition": partition, "offset": offset, "timestamp": timestamp}
    line |= _exact("key", key) | _exact("value", value) | {"reason": reason}
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"


def _reason(exc: ValueError) -> str:
    """Why a message is quarantined, naming the field (pydantic's errors) or the part of the message."""
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False)
        parts = [f"{'.'.join(map(str, err['loc'])) or 'value'}: {err['msg']}" for err in errors]
        return "; ".join(parts)[:MAX_REASON_CHARS]
    if isinstance(exc, UnicodeDecodeError):
        return f"key: not UTF-8 ({exc})"
    return f"value: {exc}"  # a tombstone or a key named twice


def _plain_values(rows: Sequence[Row]) -> bytes | None:
    """The values joined when every key and value can go into its line as is (keys plain and present, values
    on one line), else None."""
    keys = [row[2] for row in rows]
    if None in keys or not _PLAIN_KEY(b"".join(keys)):  # type: ignore[arg-type]
        return None
    values = [row[3] for row in rows]
    if None in values:
        return None
    joined = b"".join(values)  # type: ignore[arg-type]
    return None if b"\n" in joined or b"\r" in joined else joined


def _fast(partition: int, rows: Sequence[Row], validate: Validator) -> BatchLines | None:
    """Every line of an all-valid, all-plain batch at once, or None when the batch needs a closer look."""
    values = _plain_values(rows)
    if values is None:
        return None
    try:
        fields_set = validate.count_fields([row[3] for row in rows])  # type: ignore[misc]
    except ValueError:  # the model decides, message by message
        return None
    if not keys_counted_once(values, fields_set):
        return None
    return BatchLines(
        offsets=[row[0] for row in rows],
        lines=[_LINE_OF_PLAIN_KEY % (partition, o, t, k, v) for o, t, k, v in rows],
    )


def _one_by_one(partition: int, rows: Sequence[Row], validate: Validator) -> BatchLines:
    """The lines of ``rows`` message by message: quarantines the bad ones, compacts multi-line values."""
    out = BatchLines()
    for offset, timestamp, key, value in rows:
        try:
            if value is None:
                raise ValueError("empty (tombstone)")
            refuse_duplicate_keys(value, validate.record(value))
            key_text = key_json(key)
        except ValueError as exc:  # so are ValidationError and UnicodeDecodeError
            out.quarantine_offsets.append(offset)
            out.quarantine_lines.append(quarantine_line(partition, offset, timestamp, key, value, _reason(exc)))
            continue
        if b"\n" in value or b"\r" in value:
            value = compact(value)
        out.offsets.append(offset)
        out.lines.append(record_line(partition, offset, timestamp, key_text, value))
    return out


def batch_lines(partition: int, rows: Sequence[Row], validate: Validator) -> BatchLines:
    """The record and quarantine lines of ``rows`` (one partition's messages in offset order).

    Most batches are entirely valid and plain, so they are checked in one pass by the entity's msgspec mirror
    and formatted at once; a batch with a bad message (or one the mirror is unsure of), a null or unusual key or a
    multi-line value goes message by message, through the pydantic model. Both paths give the same bytes.
    """
    if not rows:
        return BatchLines()
    return _fast(partition, rows, validate) or _one_by_one(partition, rows, validate)
