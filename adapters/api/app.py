"""The REST API and the dashboard as one FastAPI app, mounted in the web process.

    /v1/...          the seed's REST API (adapters/api/routes.py)
    /dashboard/...   the server-rendered dashboard (adapters/api/dashboard.py)
    /docs            OpenAPI (Swagger UI served from the app: no CDN), /openapi.json

The app is thin: it converts requests to engine calls (`engine.service`, one tenant
repository) and rows to responses (`views.py`). See docs/ARCHITECTURE.md, "Adapters".
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from adapters.api.auth import KeyStore, RateLimiter, Sessions
from adapters.api.context import Api, ApiSettings
from adapters.api.dashboard import router as dashboard_router
from adapters.api.events import EventHub
from adapters.api.routes import router as api_router
from adapters.api.uploads import ApiBodyLimit
from adapters.api.uploads import router as uploads_router
from adapters.common.outage import answer_outages_with_503
from engine.service import EvobotService

HERE = Path(__file__).parent


def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json", title="evobot API",
        swagger_js_url="/docs/static/swagger-ui-bundle.js",
        swagger_css_url="/docs/static/swagger-ui.css",
        swagger_favicon_url="/docs/static/favicon-32x32.png",
    )


class AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped, so that a lone surrogate a bad request
    carried (JSON can hold one, UTF-8 can't) is echoed back instead of failing the 422."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


async def invalid_request(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 for a body that doesn't fit its schema, in ASCII JSON."""
    assert isinstance(exc, RequestValidationError)
    return AsciiJSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))},
                             status_code=422)


def _finite(value: Any) -> Any:
    """The echoed input with NaN and ±Infinity (which JSON can't hold) as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def build_app(api: Api) -> FastAPI:
    from swagger_ui_bundle import swagger_ui_path

    app = FastAPI(title="evobot API", version="1", docs_url=None, redoc_url=None,
                  description="Agents that improve from feedback: execute objectives, rate "
                              "the answers, watch the agent evolve, roll back.")
    app.state.api = api
    app.add_exception_handler(RequestValidationError, invalid_request)
    answer_outages_with_503(app)
    app.include_router(api_router)
    app.include_router(uploads_router)
    app.include_router(dashboard_router)
    app.add_api_route("/docs", swagger_ui, include_in_schema=False, methods=["GET"])
    app.mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger")
    app.mount("/dashboard/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(ApiBodyLimit, limits={"": api.settings.max_body_bytes})
    return app


class ApiMount:
    """The web process's mount: every path the app serves, plus the hub's lifecycle."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.app = build_app(api)
        # after the platforms' routes: Slack's and Telegram's paths are matched first
        self.routes: list[BaseRoute] = [Mount("", app=self.app)]

    async def startup(self) -> None:
        await self.api.hub.start()

    async def shutdown(self) -> None:
        await self.api.hub.stop()
        await self.api.limiter.redis.aclose()


def api_mount(settings: ApiSettings, service: EvobotService, redis: Redis,
              hub_redis: Redis) -> ApiMount:
    """`redis` serves the rate limit; `hub_redis` is the hub's own client (pub/sub holds a
    connection)."""
    api = Api(settings=settings, service=service, keys=KeyStore(service.rt.sessions),
              limiter=RateLimiter(redis, settings.rate_limit), sessions=Sessions(
                  settings.session_secret), hub=EventHub(hub_redis))
    return ApiMount(api)

