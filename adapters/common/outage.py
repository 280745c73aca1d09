"""A request the database can't record right now is answered 503 with Retry-After, not 500:
Slack and Telegram deliver it again, an API client retries, and nothing was half-recorded
(each request is one transaction). `engine.storage.outage` tells an outage from a bug."""

from __future__ import annotations

import logging

from sqlalchemy import exc as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.storage.outage import storage_unavailable

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
# what an outage surfaces as; the handler re-raises the ones that are bugs (a 500)
STORAGE_ERRORS: tuple[type[Exception], ...] = (
    sa.OperationalError, sa.InterfaceError, sa.TimeoutError, ConnectionError, TimeoutError,
)


def unavailable() -> JSONResponse:
    return JSONResponse({"ok": False, "error": "storage unavailable; retry later"},
                        status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


async def on_storage_error(request: Request, exc: Exception) -> Response:
    if not storage_unavailable(exc):
        raise exc
    log.warning("storage unavailable: %s %s answered 503 (%s)", request.method,
                request.url.path, type(exc).__name__)
    return unavailable()


def answer_outages_with_503(app: Starlette) -> None:
    for error in STORAGE_ERRORS:
        app.add_exception_handler(error, on_storage_error)
