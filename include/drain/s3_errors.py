"""Reading S3 error replies: which ones say an object is missing (and its size or text when it is not), and which
say a conditional write lost."""

from __future__ import annotations

from typing import Any

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


def stored_size(s3: Any, bucket: str, key: str) -> int | None:
    """The object's size as stored, or None when it is missing (any other error is raised)."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise


def stored_text(s3: Any, bucket: str, key: str) -> str | None:
    """The object's text, or None when it is missing (any other error is raised)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
