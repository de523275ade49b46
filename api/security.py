"""The optional API key: when API_KEY is set every record endpoint needs a matching ``X-API-Key``."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from api.metrics import RECORDS_REJECTED
from api.middleware import entity_of_path
from api.settings import ApiSettings

log = logging.getLogger(__name__)

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Required when the server has API_KEY.")


async def get_settings(request: Request) -> ApiSettings:
    """The settings the app was built with."""
    return request.app.state.settings


async def require_api_key(
    request: Request,
    settings: Annotated[ApiSettings, Depends(get_settings)],
    offered: Annotated[str | None, Security(api_key_header)] = None,
) -> None:
    """Let the request through when no key is configured or the offered key matches (constant-time compare)."""
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    if offered is None or not hmac.compare_digest(offered.encode(), expected):
        entity, detail = entity_of_path(request.url.path), "missing or wrong X-API-Key"
        RECORDS_REJECTED.labels(entity, "unauthorized").inc()
        log.info("request refused", extra={"entity": entity, "status": 401, "detail": detail})
        raise HTTPException(401, detail, headers={"WWW-Authenticate": "X-API-Key"})
