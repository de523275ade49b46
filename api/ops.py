"""Operational endpoints: liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from kafka.cluster import collect_hosts
from pydantic import BaseModel

from api.metrics import render
from api.producer import RecordProducer, TopicCheck
from api.records import get_producer
from api.security import get_settings
from api.settings import ApiSettings

router = APIRouter(tags=["operations"])


class Status(BaseModel):
    """Liveness or readiness, with the reason when not ready."""

    status: str
    detail: str = ""


CONNECT_TIMEOUT_S = 1.0
"""How long /ready waits for a TCP connection to one bootstrap server."""


async def kafka_reachable(bootstrap_servers: str) -> bool:
    """True when a TCP connection to any bootstrap server opens within CONNECT_TIMEOUT_S.

    The servers are read as the producer reads them (kafka-python's parser): the port defaults to 9092, IPv6
    addresses may be bracketed, a ``PLAINTEXT://`` prefix is dropped.
    """
    try:
        servers = collect_hosts(bootstrap_servers, randomize=False)
    except ValueError:  # a port that is not a number: the producer cannot connect either
        return False
    for host, port, _ in servers:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
        except (OSError, OverflowError, TimeoutError):  # OverflowError: a port above 65535
            continue
        writer.close()
        return True
    return False


@router.get("/health", response_model=Status, summary="The process is up")
async def health() -> Status:
    return Status(status="ok")


@router.get(
    "/ready",
    response_model=Status,
    summary="Kafka is reachable and answers, the producer connected and every topic exists",
    responses={
        503: {
            "model": Status,
            "description": "Not ready: producer not connected (yet, or being replaced after the error named), Kafka "
            "unreachable or not answering (named with its bootstrap address), or topics missing (named).",
        }
    },
)
async def ready(
    producer: Annotated[RecordProducer, Depends(get_producer)],
    settings: Annotated[ApiSettings, Depends(get_settings)],
) -> Status | JSONResponse:
    if not producer.connected:
        return JSONResponse(Status(status="unready", detail=producer.not_connected_reason).model_dump(), 503)
    servers = ",".join(server.strip() for server in settings.kafka_bootstrap_servers.split(","))
    if not await kafka_reachable(settings.kafka_bootstrap_servers):
        return JSONResponse(Status(status="unready", detail=f"Kafka at {servers} is not reachable").model_dump(), 503)
    missing = await producer.missing_topics(ask_kafka=True)
    if producer.topic_check is TopicCheck.UNANSWERED:
        detail = f"Kafka at {servers} is not answering: it did not say whether the topics exist"
        return JSONResponse(Status(status="unready", detail=detail).model_dump(), 503)
    if missing:
        detail = f"topics missing in Kafka: {', '.join(sorted(missing))}"
        return JSONResponse(Status(status="unready", detail=detail).model_dump(), 503)
    return Status(status="ready")


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    body, content_type = render()
    return Response(body, media_type=content_type)
