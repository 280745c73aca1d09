"""A console chat session on a test stack, as `evobot chat` wires it: the console notifier,
the runtime, optionally the embedded worker, and the session reading lines."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from adapters.console.app import ChatSession, ConsoleNotifier
from bot.config import Config
from bot.wiring import RedisHandle, build_runtime, close_runtime
from bot.worker import EmbeddedWorker
from engine.notify import NotifierRouter
from engine.runtime import Runtime
from engine.service import EvobotService


@dataclass
class Chat:
    session: ChatSession
    runtime: Runtime
    console: Console
    output: io.StringIO  # everything the console printed

    def __repr__(self) -> str:  # Hypothesis prints the arguments of a failing example
        return "Chat(console)"


@asynccontextmanager
async def console_chat(
    config: Config, redis: RedisHandle, *, worker: bool = False, width: int = 200,
    terminal: bool = False, outbox: Path | None = None, answer_timeout_s: float = 30.0,
) -> AsyncIterator[Chat]:
    """Without `worker` nothing answers (the session waits `answer_timeout_s` per
    objective); a `terminal` draws live views and records them (`console.export_text()`)."""
    output = io.StringIO()
    console = Console(file=output, width=width, force_terminal=terminal, color_system=None,
                      record=terminal)
    notifier = ConsoleNotifier(console, outbox=outbox)

    def router() -> NotifierRouter:
        return NotifierRouter({"local": notifier})

    runtime = await build_runtime(config, router(), redis)
    running = EmbeddedWorker(config, router, redis).start() if worker else None
    session = ChatSession(EvobotService(runtime), notifier, console, tenant_id="local:t",
                          answer_timeout_s=answer_timeout_s)
    try:
        yield Chat(session, runtime, console, output)
    finally:
        if running is not None:
            await running.stop()
        await close_runtime(runtime)


async def lines(*texts: str) -> AsyncIterator[str]:
    """What the person types, line by line."""
    for text in texts:
        yield text
