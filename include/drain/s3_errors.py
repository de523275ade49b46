"""Reading S3 error replies: which ones say an object is missing, and which say a conditional write lost."""

from __future__ import annotations

from botocore.exceptions import ClientError

_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def is_conflict(exc: ClientError) -> bool:
    """Whether an S3 error says a conditional write lost (the object changed or appeared meanwhile)."""
    error = exc.response.get("Error", {})
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return error.get("Code") in _CONFLICT_CODES or status in {"412", "409"}


def is_missing(exc: ClientError) -> bool:
    """Whether an S3 error says the object does not exist."""
    return exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}
