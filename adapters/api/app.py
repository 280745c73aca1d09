"""The REST API and the dashboard as one FastAPI app, mounted in the web process.

    /v1/...          the seed's REST API (adapters/api/routes.py)
    /dashboard/...   the server-rendered dashboard (adapters/api/dashboard.py)
    /docs            OpenAPI (Swagger UI served from the app: no CDN), /openapi.json

The app is thin: it converts requests to engine calls (`engine.service`, one tenant
repository) and rows to responses (`views.py`). See docs/ARCHITECTURE.md, "Adapters".
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.api.auth import KeyStore, RateLimiter, Sessions
from adapters.api.context import Api, ApiSettings
from adapters.api.dashboard import router as dashboard_router
from adapters.api.events import EventHub
from adapters.api.routes import router as api_router
from engine.service import EvobotService

HERE = Path(__file__).parent


class BodyLimit:
    """413 for a request body over the limit, declared or streamed (pure ASGI)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": f"body over {self.max_bytes} bytes"}, 413)
        await response(scope, receive, send)


class TooLarge(Exception):
    pass


def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json", title="evobot API",
        swagger_js_url="/docs/static/swagger-ui-bundle.js",
        swagger_css_url="/docs/static/swagger-ui.css",
        swagger_favicon_url="/docs/static/favicon-32x32.png",
    )


def build_app(api: Api) -> FastAPI:
    from swagger_ui_bundle import swagger_ui_path

    app = FastAPI(title="evobot API", version="1", docs_url=None, redoc_url=None,
                  description="Agents that improve from feedback: execute objectives, rate "
                              "the answers, watch the agent evolve, roll back.")
    app.state.api = api
    app.include_router(api_router)
    app.include_router(dashboard_router)
    app.add_api_route("/docs", swagger_ui, include_in_schema=False, methods=["GET"])
    app.mount("/docs/static", StaticFiles(directory=swagger_ui_path), name="swagger")
    app.mount("/dashboard/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(BodyLimit, max_bytes=api.settings.max_body_bytes)
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

