"""The long-running platform processes: serve (HTTP), slack (Socket Mode), telegram (polling)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any

from rich.console import Console

from bot.config import Config

log = logging.getLogger(__name__)


def run(command: str, config: Config) -> int:
    if command == "serve":
        from bot.web import serve

        return fast_loop_run(serve(config))
    if command == "slack":
        return asyncio.run(slack_socket_mode(config))
    if command == "telegram":  # Telegram: long polling
        from bot.telegram_process import telegram_polling

        return asyncio.run(telegram_polling(config))
    return _unavailable(command)


def fast_loop_run(main: Coroutine[Any, Any, int]) -> int:
    """asyncio.run on uvloop, as `uvicorn.run` would pick: the web process spends much of
    its time in the event loop (and in the HTTP parser: httptools, picked by uvicorn)."""
    import uvloop

    return uvloop.run(main)


def _unavailable(command: str, why: str = "is not available in this build yet") -> int:
    Console(stderr=True).print(f"[red]`evobot {command}` {why}[/]")
    return 2


async def slack_socket_mode(config: Config) -> int:
    """`evobot slack`: the same Bolt app over a Socket Mode websocket (no public URL).
    Needs SLACK_APP_TOKEN (xapp-…) and SLACK_BOT_TOKEN; the worker runs in this process
    unless REDIS_URL points at a shared Redis with `evobot worker` processes."""
    if not (config.slack_app_token and config.slack_bot_token):
        return _unavailable("slack", "needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN")
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.platforms import build_slack_bot, make_notifier, observed_service
    from bot.wiring import build_runtime, close_runtime, connect_redis

    if not config.slack_signing_secret:  # Socket Mode requests are not signed
        config = config.model_copy(update={"slack_signing_secret": "socket-mode"})
    redis = connect_redis(config)
    runtime = await build_runtime(config, make_notifier(config), redis)
    bot = await build_slack_bot(config, observed_service(runtime, redis), redis)
    worker = None
    if not config.redis_url:
        from bot.worker import EmbeddedWorker

        worker = EmbeddedWorker(config, lambda: make_notifier(config), redis).start()

    handler = AsyncSocketModeHandler(bot.app, config.slack_app_token)
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        if main is not None:
            loop.add_signal_handler(sig, main.cancel)
    try:
        await handler.start_async()  # runs until cancelled (SIGTERM / Ctrl-C)
    except asyncio.CancelledError:
        log.info("Socket Mode: shutting down")
    finally:
        await handler.close_async()
        await bot.drain()
        if worker is not None:
            await worker.stop()
        await close_runtime(runtime)
    return 0
