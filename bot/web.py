"""The web process (`evobot serve`): one Starlette app on $PORT.

    /slack/events, /slack/install, /slack/oauth_redirect   (adapters.slack.http)
    /telegram/webhook                                       (adapters.telegram — see below)
    /v1/..., /dashboard/..., /docs                          (adapters.api: REST API, dashboard)
    /healthz                                                database + Redis reachable
    /metrics                                                Prometheus text format

Each platform contributes a *mount*: any object with `routes: list[BaseRoute]` and, if it
needs them, `async startup()` / `async shutdown()`. `platform_mounts` lists them; adding a
platform is one line there. The API's mount comes last: it serves every path the platforms
don't.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.common.body_limit import BodyLimit
from adapters.common.outage import answer_outages_with_503
from bot.config import Config
from bot.wiring import RedisHandle, build_runtime, close_runtime, connect_redis
from engine.runtime import Runtime
from engine.service import EvobotService

log = logging.getLogger(__name__)


class WebMount(Protocol):
    routes: list[BaseRoute]


@dataclass
class WebContext:
    """What a platform needs to mount itself on the web process."""

    config: Config
    runtime: Runtime
    service: EvobotService
    redis: RedisHandle


async def platform_mounts(ctx: WebContext) -> list[WebMount]:
    mounts: list[WebMount] = []
    if ctx.config.slack_configured:
        mounts.append(await slack_mount(ctx))
    if ctx.config.telegram_bot_token:  # Telegram: /telegram/webhook
        mounts.append(telegram_mount(ctx))
    return mounts


async def slack_mount(ctx: WebContext) -> WebMount:
    from adapters.slack.http import SlackHttp
    from bot.platforms import build_slack_bot

    return SlackHttp(await build_slack_bot(ctx.config, ctx.service, ctx.redis))


def telegram_mount(ctx: WebContext) -> WebMount:
    from adapters.telegram.app import webhook_mount

    return webhook_mount(ctx.config, ctx.service, ctx.redis.asyncio_client())


# --- the app ---------------------------------------------------------------------------------


@dataclass
class Web:
    app: Starlette
    ctx: WebContext
    mounts: list[WebMount]
    started: float = field(default_factory=time.time)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            try:
                await close()
            except Exception:
                log.exception("shutdown step failed")


def api_mount(ctx: WebContext) -> WebMount:
    """The REST API and the dashboard (adapters.api)."""
    from adapters.api.app import api_mount as mount
    from adapters.api.context import ApiSettings
    from bot.observability import bind_log_context

    config = ctx.config
    settings = ApiSettings(
        session_secret=session_secret(config), rate_limit=config.api_rate_limit,
        wait_s=config.api_wait_s, log_context=bind_log_context,
    )
    return mount(settings, ctx.service, ctx.redis.asyncio_client(), ctx.redis.asyncio_client())


def session_secret(config: Config) -> str:
    """EVOBOT_SESSION_SECRET, or one kept in DATA_DIR (stable across restarts)."""
    if config.session_secret:
        return config.session_secret
    path = config.data_dir / "session-secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def _service(web_closers: list[Callable[[], Awaitable[None]]], runtime: Runtime,
             redis: RedisHandle) -> EvobotService:
    from bot.platforms import observed_service

    service = observed_service(runtime, redis)
    web_closers.append(service.aclose)
    return service


async def build_web(config: Config, *, embedded_worker: bool | None = None) -> Web:
    """Runtime + platform mounts + Starlette app, in the loop that will serve it."""
    from bot.observability import HttpMetrics
    from bot.platforms import make_notifier

    redis = connect_redis(config)
    runtime = await build_runtime(config, make_notifier(config), redis)
    closers: list[Callable[[], Awaitable[None]]] = [lambda: close_runtime(runtime)]
    ctx = WebContext(config=config, runtime=runtime, service=_service(closers, runtime, redis),
                     redis=redis)
    mounts = [*await platform_mounts(ctx), api_mount(ctx)]
    web = Web(app=Starlette(), ctx=ctx, mounts=mounts, closers=closers)
    routes: list[BaseRoute] = [
        Route("/healthz", _healthz(ctx), methods=["GET"]),
        Route("/metrics", _metrics(ctx, web.started), methods=["GET"]),
    ]
    for mount in mounts:
        routes += mount.routes
    web.app = Starlette(routes=routes, lifespan=_lifespan(mounts))
    web.app.add_middleware(HttpMetrics)
    answer_outages_with_503(web.app)
    # outermost: an oversized body is refused before a signature check or a JSON parse
    web.app.add_middleware(BodyLimit, limits=body_limits(mounts))
    if embedded_worker if embedded_worker is not None else not config.redis_url:
        # the embedded default: no REDIS_URL, so no separate `evobot worker` can reach our
        # private Redis — run the worker in this process
        from bot.worker import EmbeddedWorker

        worker = EmbeddedWorker(config, lambda: make_notifier(config), redis).start()
        web.closers.append(worker.stop)
    return web


def body_limits(mounts: list[WebMount]) -> dict[str, int]:
    """Each mount's `body_limits` (path prefix → bytes); the API limits its own bodies."""
    limits: dict[str, int] = {}
    for mount in mounts:
        limits |= getattr(mount, "body_limits", {})
    return limits


def _lifespan(mounts: list[WebMount]) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        for mount in mounts:
            startup = getattr(mount, "startup", None)
            if startup is not None:
                await startup()
        try:
            yield
        finally:
            for mount in reversed(mounts):
                shutdown = getattr(mount, "shutdown", None)
                if shutdown is not None:
                    await shutdown()

    return lifespan


def _healthz(ctx: WebContext) -> Callable[[Request], Awaitable[Response]]:
    async def healthz(request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            async with ctx.runtime.sessions() as session:
                await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=3)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await asyncio.wait_for(asyncio.to_thread(ctx.redis.sync.ping), timeout=3)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"ok": ok, **checks}, status_code=200 if ok else 503)

    return healthz


def _metrics(ctx: WebContext, started: float) -> Callable[[Request], Awaitable[Response]]:
    from prometheus_client import CONTENT_TYPE_LATEST

    from bot.observability import ScrapeTimeGauges, render_metrics

    def queue_lengths() -> dict[str, int]:
        from rq import Queue

        from engine.jobs import EVOLUTION, EXECUTIONS

        return {name: Queue(name, connection=ctx.redis.sync).count
                for name in (EXECUTIONS, EVOLUTION)}

    gauges = ScrapeTimeGauges(queue_lengths, started)

    async def render(request: Request) -> Response:
        body = await asyncio.wait_for(asyncio.to_thread(
            render_metrics, ctx.config.prometheus_multiproc_dir, gauges), timeout=10)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return render


async def serve(config: Config) -> int:
    """Run the web process until SIGTERM/SIGINT (uvicorn's handlers: graceful shutdown)."""
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    web = await build_web(config)
    # JSON logs: uvicorn's records go through the root's JSON handler, not uvicorn's own
    log_config = None if config.log_format == "json" else LOGGING_CONFIG
    server = uvicorn.Server(
        uvicorn.Config(web.app, host=config.host, port=config.port, lifespan="on",
                       log_level="warning", access_log=False, proxy_headers=True,
                       log_config=log_config)
    )
    log.info("evobot web on %s:%d: %s", config.host, config.port,
             ", ".join(sorted({getattr(r, "path", "?") for r in web.app.routes})))
    try:
        await server.serve()
    finally:
        await web.aclose()
    return 0
