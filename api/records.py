"""Record endpoints: ``POST /<entity>/`` for one record and ``POST /<entity>/batch`` for many."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from email.message import Message
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, from_json

from api.logs import request_id_var
from api.metrics import KAFKA_ERRORS, RECORDS_ACCEPTED, RECORDS_REJECTED
from api.producer import (
    Delivery,
    Failure,
    Outcome,
    OutgoingRecord,
    RecordProducer,
    RecordTooLargeError,
    TopicMissingError,
)
from api.schemas import Accepted, BatchItem, BatchResult, FieldError, Invalid, Problem
from api.security import require_api_key
from api.settings import ApiSettings
from include.json_keys import DuplicateKeyError, keys_counted_once, refuse_duplicate_keys
from include.records import MODELS, Entity, kafka_key, kafka_value

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
"""What ``count`` is given for records Kafka stored."""
NOT_JSON = "not_json"
"""The rejection reason of a body that is not JSON, or is declared as another type, in another charset than UTF-8 or
compressed."""
INVALID = "invalid"
"""The rejection reason of a record that fails validation."""
TOO_LARGE = "too_large"
"""The rejection reason (and batch error type) of a record larger than Kafka accepts."""
TOPIC_MISSING = "topic_missing"
"""The rejection reason (and batch error type) of a record whose topic does not exist in Kafka."""
KAFKA_UNAVAILABLE = "kafka_unavailable"
"""The rejection reason of a record Kafka did not acknowledge in time."""
DUPLICATE_KEY = "duplicate_key"
"""The error type of a record whose JSON object names a key twice."""
MAX_REPORTED_ERRORS = 20
"""Most errors listed for one record; ``error_count`` then gives how many it has."""
JSON = "application/json"
"""The media type the record endpoints take."""


async def get_producer(request: Request) -> RecordProducer:
    """The process's producer, created in the app's lifespan."""
    return request.app.state.producer


MAX_NAME_CHARS = 100
"""Characters of a field name an error repeats: an unknown key is the client's input and can be 1 MB long."""


def _shortened(part: str | int) -> str | int:
    """A location part as errors name it: an over-long key is cut, and says so."""
    return f"{part[:MAX_NAME_CHARS]}…" if isinstance(part, str) and len(part) > MAX_NAME_CHARS else part


def field_errors(errors: list[ErrorDetails], prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Pydantic errors as the API reports them, naming the field (input values are not echoed; over-long key names
    are cut to MAX_NAME_CHARS)."""
    return [
        FieldError(
            field=".".join(str(_shortened(part)) for part in error["loc"]),
            loc=["body", *prefix, *map(_shortened, error["loc"])],
            msg=error["msg"],
            type=error["type"],
        )
        for error in errors
    ]


def _details(error: ValidationError) -> list[ErrorDetails]:
    return error.errors(include_url=False, include_context=False, include_input=False)


def reported_errors(
    errors: list[ErrorDetails], prefix: tuple[str | int, ...] = ()
) -> tuple[list[FieldError], int | None]:
    """The first MAX_REPORTED_ERRORS ``errors`` of a record, and how many it has when some are left out.

    A 1 MB object can hold 95,000 unknown keys: listing them all made a 10 MB answer and log line.
    """
    total = len(errors)
    return field_errors(errors[:MAX_REPORTED_ERRORS], prefix), (total if total > MAX_REPORTED_ERRORS else None)


def _duplicate_key(error: DuplicateKeyError, prefix: tuple[int, ...] = ()) -> FieldError:
    """The error of an object naming a key twice (its message names the key)."""
    return FieldError(field="", loc=["body", *prefix], msg=str(error), type=DUPLICATE_KEY)


def _refused_format(request: Request) -> str | None:
    """Why the body's declared format is not one the endpoints read, or None.

    JSON is all they take: a body without Content-Type is taken as JSON (clients that send raw bytes often declare
    nothing); ``curl -d`` declares a form (application/x-www-form-urlencoded): refused. JSON is UTF-8 (RFC 8259), so a
    declared charset other than UTF-8 (or its subset US-ASCII) is refused rather than read as UTF-8 (cp1252 text would
    be stored changed), and so is a compressed body (the endpoints do not decompress).
    """
    codings = [
        coding.strip().lower()
        for line in request.headers.getlist("content-encoding")
        for coding in line.split(",")
        if coding.strip()  # empty list elements are ignored (RFC 9110 5.6.1)
    ]
    if compressed := [coding for coding in codings if coding != "identity"]:
        return f"Content-Encoding {_shortened(compressed[0])!r} is not supported: send the JSON uncompressed"
    declared = request.headers.getlist("content-type")
    if not declared:
        return None
    if len(declared) > 1:
        return "Content-Type is given more than once"
    header = Message()
    header["content-type"] = declared[0]
    media_type = (header.get_params() or [("", "")])[0][0].strip().lower()
    if media_type != JSON:
        return f"Content-Type must be {JSON}, got {_shortened(media_type)!r}"
    charset = header.get_param("charset")
    if charset is not None and str(charset).strip().lower() not in UTF8_CHARSETS:
        return f"the charset of {JSON} must be utf-8 (JSON is UTF-8), got {_shortened(str(charset))!r}"
    return None


UTF8_CHARSETS = ("utf-8", "utf8", "us-ascii", "ascii")
"""Charsets whose bytes read as UTF-8 give the text the client meant."""


UTF8_BOM = b"\xef\xbb\xbf"


def not_json_detail(body: bytes, parser_message: str) -> str:
    """The 400's detail for a body the JSON parser refused; a leading byte order mark is named (RFC 8259 forbids
    it, and the parser's "expected value at line 1 column 1" does not say why)."""
    if body.startswith(UTF8_BOM):
        return "body is not valid JSON: it starts with a UTF-8 byte order mark (EF BB BF); send the JSON without it"
    return f"body is not valid JSON: {parser_message}"


def _refused_request(entity: Entity, status: int, detail: str) -> Response:
    """A body refused as a whole before any record is read from it (400 not JSON, 415 not a JSON body): counted
    under ``not_json`` and logged, as every rejection is."""
    count(entity, NOT_JSON)
    log.info("request refused", extra={"entity": entity, "status": status, "detail": detail})
    return _problem(status, detail)


_DECODER = json.JSONDecoder()
_BLANKS = re.compile(r"[ \t\n\r]*")


def _item_texts(body: bytes) -> list[bytes]:
    """The JSON text of each item of the JSON array ``body`` (which from_json parsed already)."""
    text = body.decode()
    position = _BLANKS.match(text).end() + 1  # type: ignore[union-attr]  # past '['
    texts: list[bytes] = []
    while True:
        position = _BLANKS.match(text, position).end()  # type: ignore[union-attr]
        if text[position] == "]":
            return texts
        _, end = _DECODER.raw_decode(text, position)
        texts.append(text[position:end].encode())
        position = _BLANKS.match(text, end).end()  # type: ignore[union-attr]
        if text[position] == ",":
            position += 1


def _refuse_batch_duplicate_keys(body: bytes, records: dict[int, BaseModel]) -> dict[int, DuplicateKeyError]:
    """The records of the batch ``body`` (by position) whose object names a key twice.

    Most batches are proved free of doubled keys at once; the others are checked record by record.
    """
    if not records or keys_counted_once(body, sum(len(record.model_fields_set) for record in records.values())):
        return {}
    refused: dict[int, DuplicateKeyError] = {}
    for index, text in enumerate(_item_texts(body)):
        if index in records:
            try:
                refuse_duplicate_keys(text, records[index])
            except DuplicateKeyError as error:
                refused[index] = error
    return refused


def _outgoing(entity: Entity, topic: str, record: BaseModel, request_id: str) -> OutgoingRecord:
    return OutgoingRecord(
        topic=topic,
        key=kafka_key(entity, record),
        value=kafka_value(record),
        timestamp_ms=time.time_ns() // 1_000_000,
        headers=[("request_id", request_id.encode())],
    )


def _json(body: BaseModel, status: int, headers: dict[str, str] | None = None) -> Response:
    """Serialise a response model once, in pydantic-core (FastAPI does not validate it again)."""
    return Response(body.model_dump_json(exclude_none=True), status, headers, media_type="application/json")


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return _json(Problem(detail=detail), status, headers)


def _body_schema(model: type[BaseModel], batch_max: int | None) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema()
    if batch_max is not None:
        schema = {"type": "array", "items": schema, "minItems": 1, "maxItems": batch_max}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_ERRORS = {
    400: {"model": Problem, "description": "The body is not JSON."},
    401: {"model": Problem, "description": "Missing or wrong X-API-Key."},
    413: {"model": Problem, "description": "The body is over the size limit, or the record over Kafka's."},
    415: {
        "model": Problem,
        "description": f"The Content-Type is not {JSON} or its charset not utf-8 (a body without Content-Type is "
        "taken as JSON), or the body is compressed (Content-Encoding).",
    },
    503: {
        "model": Problem,
        "description": "Kafka did not acknowledge in time, or the entity's topic does not exist (named); "
        "retry after Retry-After seconds.",
    },
}


def entity_router(entity: Entity, settings: ApiSettings) -> APIRouter:
    """The two endpoints of one entity, producing to its topic."""
    model = MODELS[entity]
    topic = settings.topic(entity)
    retry_after = {"Retry-After": str(settings.retry_after_s)}
    guards = [Depends(require_api_key)] if settings.api_key is not None else []
    router = APIRouter(prefix=f"/{entity}", tags=[entity], dependencies=guards)

    @router.post(
        "/",
        response_model=Accepted,
        summary=f"Ingest one {entity} record",
        responses={
            **_ERRORS,
            422: {
                "model": Invalid,
                "description": f"Invalid record: up to {MAX_REPORTED_ERRORS} errors, each naming its field "
                "(error_count says how many there are when more), or a key the object names twice.",
            },
        },
        openapi_extra=_body_schema(MODELS[entity], None),
    )
    async def ingest_one(request: Request, producer: Annotated[RecordProducer, Depends(get_producer)]) -> Response:
        request_id = request_id_var.get()
        if (bad_format := _refused_format(request)) is not None:
            return _refused_request(entity, 415, bad_format)
        body = await request.body()
        try:
            record = model.model_validate_json(body)
            refuse_duplicate_keys(body, record)
        except ValidationError as error:
            errors = _details(error)
            if errors and errors[0]["type"] == "json_invalid":
                return _refused_request(entity, 400, not_json_detail(body, errors[0]["msg"]))
            detail, error_count = reported_errors(errors)
            return _invalid(entity, Invalid(detail=detail, error_count=error_count))
        except DuplicateKeyError as error:
            return _invalid(entity, Invalid(detail=[_duplicate_key(error)]))
        outcome = (await producer.send_many([_outgoing(entity, topic, record, request_id)]))[0]
        if isinstance(outcome, Delivery):
            count(entity, ACCEPTED)
            accepted = Accepted(
                topic=outcome.topic, partition=outcome.partition, offset=outcome.offset, request_id=request_id
            )
            return _json(accepted, 200)
        refused = refusal(outcome)
        count(entity, refused.reason)
        log.warning(refused.log, extra={"entity": entity, **refused.context})
        return _problem(refused.status, refused.detail, retry_after if refused.status == 503 else None)

    # the same endpoint without the trailing slash, answered rather than redirected (a 307 with an empty body)
    router.add_api_route("", ingest_one, methods=["POST"], include_in_schema=False)

    @router.post(
        "/batch",
        response_model=BatchResult,
        summary=f"Ingest up to {settings.batch_max_records} {entity} records, answered per record",
        description="200 when every record was accepted, 207 when some were not (see each item), "
        "422 when none was valid, 503 when none was accepted and Kafka could not take at least one (retry later). "
        "A record larger than Kafka accepts is invalid, with an error of type too_large.",
        responses={
            **_ERRORS,
            207: {"model": BatchResult, "description": "Some records were not accepted."},
            413: {"model": Problem, "description": "The body is over the size limit."},
            422: {"model": BatchResult | Invalid, "description": "No record was valid, or the body is not a list."},
            503: {
                "model": BatchResult,
                "description": "No record was accepted, and Kafka could not take at least one; retry later.",
            },
        },
        openapi_extra=_body_schema(MODELS[entity], settings.batch_max_records),
    )
    async def ingest_batch(request: Request, producer: Annotated[RecordProducer, Depends(get_producer)]) -> Response:
        request_id = request_id_var.get()
        if (bad_format := _refused_format(request)) is not None:
            return _refused_request(entity, 415, bad_format)
        body = await request.body()
        try:
            items = from_json(body)
        except ValueError as error:
            return _refused_request(entity, 400, not_json_detail(body, str(error)))
        if not isinstance(items, list) or not 1 <= len(items) <= settings.batch_max_records:
            count(entity, INVALID)
            msg = f"body must be a JSON array of 1 to {settings.batch_max_records} records"
            log.info("request refused", extra={"entity": entity, "status": 422, "detail": msg})
            return _json(Invalid(detail=[FieldError(field="", loc=["body"], msg=msg, type="batch_shape")]), 422)
        results: list[BatchItem | None] = [None] * len(items)
        records: dict[int, BaseModel] = {}
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                results[index] = BatchItem(index=index, status="invalid", errors=[_not_an_object(index)])
                continue
            try:
                records[index] = model.model_validate(item)
            except ValidationError as error:
                errors, error_count = reported_errors(_details(error), (index,))
                results[index] = BatchItem(index=index, status="invalid", errors=errors, error_count=error_count)
        for index, duplicate in _refuse_batch_duplicate_keys(body, records).items():
            del records[index]
            results[index] = BatchItem(index=index, status="invalid", errors=[_duplicate_key(duplicate, (index,))])
        positions = list(records)
        outgoing = [_outgoing(entity, topic, record, request_id) for record in records.values()]
        outcomes = await producer.send_many(outgoing) if outgoing else []
        for index, outcome in zip(positions, outcomes, strict=True):
            results[index] = _batch_item(index, outcome)
        _log_refusals(entity, [refusal(outcome) for outcome in outcomes if not isinstance(outcome, Delivery)])
        result = _summarise(entity, request_id, [item for item in results if item is not None])
        status = batch_status(result)
        return _json(result, status, retry_after if status == 503 else None)

    return router


def _invalid(entity: Entity, answer: Invalid) -> Response:
    """The 422 of a single record, counted and logged (only the listed errors: their number is capped)."""
    count(entity, INVALID)
    extra: dict[str, object] = {"entity": entity, "errors": [error.field or error.msg for error in answer.detail]}
    if answer.error_count is not None:
        extra["error_count"] = answer.error_count
    log.info("record rejected", extra=extra)
    return _json(answer, 422)


def _not_an_object(index: int) -> FieldError:
    """The error of a batch item that is not a JSON object, worded as the single endpoint words it."""
    return FieldError(field="", loc=["body", index], msg="Input should be an object", type="model_type")


@dataclass(frozen=True, slots=True)
class Refusal:
    """How the API answers, counts and logs a record that Kafka did not store."""

    reason: str
    """The rejected-records metric's reason; a batch item's error type when it carries an error."""
    status: int
    """The single endpoint's HTTP status (a 503 comes with Retry-After)."""
    detail: str
    """The single endpoint's message."""
    item_status: Literal["invalid", "unavailable"]
    """A batch item's status."""
    item_error: str | None
    """A batch item's error message; None when the item carries no error."""
    log: str
    """The warning the single endpoint logs."""
    context: dict[str, str]
    """What that warning adds to the entity."""


def refusal(failure: Failure) -> Refusal:
    """What a record's Kafka failure means for the caller, the metrics and the log."""
    if isinstance(failure, RecordTooLargeError):
        return Refusal(
            reason=TOO_LARGE,
            status=413,
            detail="the record is larger than Kafka accepts, it was not stored",
            item_status="invalid",
            item_error="the record is larger than Kafka accepts",
            log="record too large for kafka",
            context={"error": str(failure)},
        )
    if isinstance(failure, TopicMissingError):
        return Refusal(
            reason=TOPIC_MISSING,
            status=503,
            detail=f"{failure}, the record was not stored",
            item_status="unavailable",
            item_error=str(failure),
            log="topic missing in kafka",
            context={"topic": failure.topic},
        )
    return Refusal(
        reason=KAFKA_UNAVAILABLE,
        status=503,
        detail="Kafka is unavailable, the record was not stored",
        item_status="unavailable",
        item_error=None,
        log="kafka unavailable",
        context={"error": str(failure)},
    )


def count(entity: Entity, reason: str, records: int = 1) -> None:
    """Count records accepted (``reason`` ACCEPTED) or rejected for ``reason``.

    A record Kafka did not acknowledge in time is also counted as a Kafka error.
    """
    if reason == ACCEPTED:
        RECORDS_ACCEPTED.labels(entity).inc(records)
        return
    RECORDS_REJECTED.labels(entity, reason).inc(records)
    if reason == KAFKA_UNAVAILABLE:
        KAFKA_ERRORS.labels(entity).inc(records)


def _batch_item(index: int, outcome: Outcome) -> BatchItem:
    if isinstance(outcome, Delivery):
        return BatchItem(
            index=index, status="accepted", topic=outcome.topic, partition=outcome.partition, offset=outcome.offset
        )
    refused = refusal(outcome)
    if refused.item_error is None:
        return BatchItem(index=index, status=refused.item_status)
    error = FieldError(field="", loc=["body", index], msg=refused.item_error, type=refused.reason)
    return BatchItem(index=index, status=refused.item_status, errors=[error])


def _log_refusals(entity: Entity, refusals: list[Refusal]) -> None:
    """Log each distinct refusal of a batch's records once, as the single endpoint does, with how many it refused."""
    counted: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for refused in refusals:
        key = (refused.log, tuple(refused.context.items()))
        counted[key] = counted.get(key, 0) + 1
    for (message, context), records in counted.items():
        log.warning(message, extra={"entity": entity, "records": records, **dict(context)})


def batch_status(result: BatchResult) -> int:
    """200 when every record was accepted, 422 when none was valid, 503 when none was accepted and Kafka could
    not take at least one (the client retries later, whatever else was invalid), 207 otherwise."""
    if not result.invalid and not result.unavailable:
        return 200
    if not result.accepted:
        return 503 if result.unavailable else 422
    return 207


def _summarise(entity: Entity, request_id: str, items: list[BatchItem]) -> BatchResult:
    counts = {"accepted": 0, "invalid": 0, "unavailable": 0}
    for item in items:
        counts[item.status] += 1
    too_large = sum(1 for item in items if item.errors and item.errors[0].type == TOO_LARGE)
    topic_missing = sum(1 for item in items if item.errors and item.errors[0].type == TOPIC_MISSING)
    count(entity, ACCEPTED, counts["accepted"])
    count(entity, INVALID, counts["invalid"] - too_large)
    count(entity, TOO_LARGE, too_large)
    count(entity, TOPIC_MISSING, topic_missing)
    count(entity, KAFKA_UNAVAILABLE, counts["unavailable"] - topic_missing)
    if counts["invalid"] or counts["unavailable"]:
        log.info("batch partly refused", extra={"entity": entity, **counts})
    return BatchResult(request_id=request_id, results=items, **counts)
