"""The web process (`evobot serve`): one Starlette app on $PORT.

    /slack/events, /slack/install, /slack/oauth_redirect   (adapters.slack.http)
    /telegram/webhook                                       (adapters.telegram — see below)
    /healthz                                                database + Redis reachable
    /metrics                                                Prometheus text format

Each platform contributes a *mount*: any object with `routes: list[BaseRoute]` and, if it
needs them, `async startup()` / `async shutdown()`. `platform_mounts` lists them; adding a
platform is one line there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


# --- metrics ---------------------------------------------------------------------------------

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Metrics:
    """A small Prometheus registry: request counts and latency per route."""

    requests: dict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    buckets: dict[str, list[int]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    started: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(route, method, status)] += 1
            counts = self.buckets.setdefault(route, [0] * len(BUCKETS))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            self.sums[route] += seconds
            self.counts[route] += 1

    def render(self, gauges: dict[str, float]) -> str:
        lines = [
            "# HELP evobot_http_requests_total HTTP requests by route, method and status.",
            "# TYPE evobot_http_requests_total counter",
        ]
        with self.lock:
            for (route, method, status), n in sorted(self.requests.items()):
                lines.append(f'evobot_http_requests_total{{route="{route}",method="{method}",'
                             f'status="{status}"}} {n}')
            lines += [
                "# HELP evobot_http_request_seconds Time to the HTTP response.",
                "# TYPE evobot_http_request_seconds histogram",
            ]
            for route, counts in sorted(self.buckets.items()):
                for bound, n in zip(BUCKETS, counts, strict=True):
                    lines.append(f'evobot_http_request_seconds_bucket{{route="{route}",'
                                 f'le="{bound}"}} {n}')
                lines.append(f'evobot_http_request_seconds_bucket{{route="{route}",le="+Inf"}} '
                             f"{self.counts[route]}")
                lines.append(f'evobot_http_request_seconds_sum{{route="{route}"}} '
                             f"{self.sums[route]:.6f}")
                lines.append(f'evobot_http_request_seconds_count{{route="{route}"}} '
                             f"{self.counts[route]}")
        for name, value in sorted(gauges.items()):
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Pure ASGI middleware (no buffering): times every HTTP request to its response start."""

    def __init__(self, app: ASGIApp, metrics: Metrics, known: Callable[[], set[str]]) -> None:
        self.app = app
        self.metrics = metrics
        self.known = known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                path = scope.get("path", "")
                route = path if path in self.known() else "other"
                self.metrics.observe(route, scope.get("method", ""), status,
                                     time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, send_wrapper)


# --- the app ---------------------------------------------------------------------------------


@dataclass
class Web:
    app: Starlette
    ctx: WebContext
    mounts: list[WebMount]
    metrics: Metrics
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            try:
                await close()
            except Exception:
                log.exception("shutdown step failed")


async def build_web(config: Config, *, embedded_worker: bool | None = None) -> Web:
    """Runtime + platform mounts + Starlette app, in the loop that will serve it."""
    from bot.platforms import make_notifier

    redis = connect_redis(config)
    runtime = await build_runtime(config, make_notifier(config), redis)
    ctx = WebContext(config=config, runtime=runtime, service=EvobotService(runtime), redis=redis)
    mounts = await platform_mounts(ctx)
    metrics = Metrics()
    routes: list[BaseRoute] = [
        Route("/healthz", _healthz(ctx), methods=["GET"]),
        Route("/metrics", _metrics(ctx, metrics), methods=["GET"]),
    ]
    for mount in mounts:
        routes += mount.routes
    known = {getattr(r, "path", "") for r in routes}

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

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(MetricsMiddleware, metrics=metrics, known=lambda: known)
    web = Web(app=app, ctx=ctx, mounts=mounts, metrics=metrics)
    web.closers.append(lambda: close_runtime(runtime))
    if embedded_worker if embedded_worker is not None else not config.redis_url:
        # the embedded default: no REDIS_URL, so no separate `evobot worker` can reach our
        # private Redis — run the worker in this process
        from bot.worker import EmbeddedWorker

        worker = EmbeddedWorker(config, lambda: make_notifier(config), redis).start()

        async def stop_worker() -> None:
            worker.stop()

        web.closers.append(stop_worker)
    return web


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


def _metrics(ctx: WebContext, metrics: Metrics) -> Callable[[Request], Awaitable[Response]]:
    async def render(request: Request) -> Response:
        gauges: dict[str, Any] = {"evobot_uptime_seconds": round(time.time() - metrics.started, 3)}
        try:
            from rq import Queue

            from engine.jobs import EVOLUTION, EXECUTIONS

            def lengths() -> dict[str, int]:
                return {
                    f"evobot_queue_{name}_jobs": Queue(name, connection=ctx.redis.sync).count
                    for name in (EXECUTIONS, EVOLUTION)
                }

            gauges.update(await asyncio.wait_for(asyncio.to_thread(lengths), timeout=3))
        except Exception:
            log.debug("queue lengths unavailable", exc_info=True)
        return PlainTextResponse(metrics.render(gauges),
                                 media_type="text/plain; version=0.0.4")

    return render


async def serve(config: Config) -> int:
    """Run the web process until SIGTERM/SIGINT (uvicorn's handlers: graceful shutdown)."""
    import uvicorn

    web = await build_web(config)
    server = uvicorn.Server(
        uvicorn.Config(web.app, host=config.host, port=config.port, lifespan="on",
                       log_level="warning", access_log=False, proxy_headers=True)
    )
    log.info("evobot web on %s:%d: %s", config.host, config.port,
             ", ".join(sorted({getattr(r, "path", "?") for r in web.app.routes})))
    try:
        await server.serve()
    finally:
        await web.aclose()
    return 0
