"""Response bodies of the API (request bodies are the shared record models of include.records)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Accepted(BaseModel):
    """A record Kafka acknowledged, and where it is."""

    topic: str
    partition: int
    offset: int
    request_id: str


class FieldError(BaseModel):
    """One reason a record was refused; ``field`` names the offending field (empty for the whole body)."""

    field: str
    loc: list[str | int]
    msg: str
    type: str


class Invalid(BaseModel):
    """A 422 answer: the problems found in the record (the first 20 when it has more)."""

    detail: list[FieldError]
    error_count: int | None = None
    """How many problems the record has, given only when they are more than ``detail`` lists."""


class Problem(BaseModel):
    """A 4xx/5xx answer that is not about one field."""

    detail: str


class BatchItem(BaseModel):
    """The outcome of one record of a batch, by its position in the request."""

    index: int
    status: Literal["accepted", "invalid", "unavailable"]
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    errors: list[FieldError] | None = None
    error_count: int | None = None
    """How many errors the record has, given only when they are more than ``errors`` lists (the first 20)."""


class BatchResult(BaseModel):
    """The outcome of a batch: counts and one item per record, in request order."""

    accepted: int
    invalid: int
    unavailable: int
    request_id: str
    results: list[BatchItem]
