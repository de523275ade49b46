"""Pure ASGI middleware: request ids and latency metrics, the limit of requests in flight, and the request body
size limit."""

from __future__ import annotations

import json
import logging
import random
import re
import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.logs import request_id_var
from api.metrics import RECORDS_REJECTED, REQUEST_LATENCY
from include.records import ENTITIES

log = logging.getLogger(__name__)

_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

CLIENT_CLOSED_REQUEST = 499
"""The status a request is timed under when its client hung up before any answer (nginx's code for it)."""


def entity_of_path(path: str) -> str:
    """The entity a path is about (``/pin/batch`` -> ``pin``), or ``-``."""
    first = path.strip("/").split("/", 1)[0]
    return first if first in ENTITIES else "-"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def send_json(send: Send, status: int, body: dict[str, object], headers: list[tuple[bytes, bytes]]) -> None:
    """Answer with a JSON body straight from ASGI (used before the app is reached)."""
    payload = json.dumps(body, separators=(",", ":")).encode()  # compact, as the app's own answers
    length = str(len(payload)).encode()
    start_headers = [(b"content-type", b"application/json"), (b"content-length", length), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": payload})


class RequestContextMiddleware:
    """Give each request an id (``X-Request-ID``, taken from the client when sane) and time it by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = _header(scope, b"x-request-id")
        request_id = offered.decode() if offered and _SAFE_REQUEST_ID.fullmatch(offered.decode("latin-1")) else ""
        request_id = request_id or f"{random.getrandbits(64):016x}"  # cheap and unique enough to trace a request
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status: int | None = None
        client_left = False

        async def receive_noting_disconnect() -> Message:
            nonlocal client_left
            message = await receive()
            client_left = client_left or message["type"] == "http.disconnect"
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive_noting_disconnect, send_with_id)
        finally:
            if status is None and client_left:  # the client hung up before any answer: not a server error
                status = CLIENT_CLOSED_REQUEST
                _match_route(scope)
            route = scope.get("route")
            REQUEST_LATENCY.labels(getattr(route, "path", "unmatched"), scope["method"], str(status or 500)).observe(
                time.perf_counter() - started
            )
            request_id_var.reset(token)


BODY_METHODS = ("POST", "PUT", "PATCH")


class InFlightLimitMiddleware:
    """Answer 503 at once, before reading its body, to a request with a body beyond ``max_requests`` this worker is
    handling: each one holds its body (up to API_MAX_BODY_BYTES) until Kafka answers, so this bounds what many or
    slow clients can make a worker hold."""

    def __init__(self, app: ASGIApp, max_requests: int, retry_after_s: int) -> None:
        self.app = app
        self.max_requests = max_requests
        self.retry_after_s = retry_after_s
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_requests:
            await self._busy(scope, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _busy(self, scope: Scope, send: Send) -> None:
        entity = entity_of_path(scope["path"])
        RECORDS_REJECTED.labels(entity, "busy").inc()
        detail = (
            f"this API worker is handling {self.max_requests} requests already (API_MAX_REQUESTS_IN_FLIGHT): "
            "send it again later"
        )
        log.warning("request refused", extra={"entity": entity, "status": 503, "detail": detail})
        _match_route(scope)
        headers = [(b"retry-after", str(self.retry_after_s).encode()), (b"connection", b"close")]
        await send_json(send, 503, {"detail": detail}, headers)


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413 before they are parsed (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        entity = entity_of_path(scope["path"])
        RECORDS_REJECTED.labels(entity, "too_large").inc()
        detail = f"request body is larger than the limit of {self.max_bytes} bytes"
        log.info("request refused", extra={"entity": entity, "status": 413, "detail": detail})
        _match_route(scope)  # the refusal is timed under the route it was sent to, not as unmatched
        await send_json(send, 413, {"detail": detail}, [(b"connection", b"close")])


def _match_route(scope: Scope) -> None:
    """Put the app's route that fully matches the request into ``scope["route"]``, as routing would."""
    for route in scope["app"].router.routes:
        if route.matches(scope)[0] == Match.FULL:
            scope["route"] = route
            return
