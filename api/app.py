"""The app factory: settings, logging, the Kafka producer's lifespan, middleware and routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import ops
from api.logs import configure_logging
from api.metrics import forget_this_worker
from api.middleware import BodyLimitMiddleware, InFlightLimitMiddleware, RequestContextMiddleware
from api.producer import RecordProducer
from api.records import entity_router
from api.settings import ApiSettings
from include.records import ENTITIES


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the API; the producer is created when the app starts and flushed and closed when it stops."""
    settings = settings or ApiSettings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = RecordProducer(settings, [settings.topic(entity) for entity in ENTITIES])
        app.state.producer = producer
        await producer.start()
        gc.freeze()  # what exists after startup lives as long as the process: keep it out of GC scans
        try:
            yield
        finally:
            try:
                await producer.close()
            finally:
                forget_this_worker()

    app = FastAPI(
        title="Pinterest ingest API",
        version="1.0.0",
        summary="Validates pin, geo and user records and produces them to Kafka.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    for entity in ENTITIES:
        app.include_router(entity_router(entity, settings))
    app.include_router(ops.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        InFlightLimitMiddleware, max_requests=settings.max_requests_in_flight, retry_after_s=settings.retry_after_s
    )
    app.add_middleware(RequestContextMiddleware)
    return app
