"""`evobot telegram`: the Telegram adapter by long polling (no public URL needed).

The worker runs in this process unless REDIS_URL points at a shared Redis served by
`evobot worker` processes (as with `evobot slack`)."""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.config import Config

log = logging.getLogger(__name__)


async def telegram_polling(config: Config) -> int:
    from adapters.telegram.app import run_polling
    from adapters.telegram.client import TelegramSettings
    from bot.platforms import make_notifier, observed_service
    from bot.wiring import build_runtime, close_runtime, connect_redis
    from bot.worker import EmbeddedWorker

    settings = TelegramSettings.from_config(config)
    if settings is None:
        log.error("`evobot telegram` needs TELEGRAM_BOT_TOKEN")
        return 2
    redis = connect_redis(config)
    runtime = await build_runtime(config, make_notifier(config), redis)
    embedded = None
    if not config.redis_url:
        embedded = EmbeddedWorker(config, lambda: make_notifier(config), redis).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    shared = redis.asyncio_client()  # update dedup and per-chat pacing, with every process
    try:
        await run_polling(settings, observed_service(runtime, redis), stop=stop, redis=shared)
    finally:
        if embedded is not None:
            await embedded.stop()
        await shared.aclose()
        await close_runtime(runtime)
    return 0
