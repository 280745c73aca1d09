"""`evobot chat` on the embedded stack with a model that writes slowly: the answer panel grows
while the model writes, then becomes the final panel with its footer."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator

from rich.console import Console

from adapters.console.app import ChatSession, ConsoleNotifier
from bot.wiring import build_runtime, close_runtime
from bot.worker import EmbeddedWorker
from engine.llm.scripted import ScriptedReply, register_script
from engine.notify import NotifierRouter
from engine.service import EvobotService
from tests.conftest import Stack

STORY = " ".join(f"w{i}" for i in range(30))


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_the_answer_grows_live_and_becomes_the_final_panel(embedded: Stack) -> None:
    register_script("storyteller", lambda request: ScriptedReply(content=STORY,
                                                                 token_delay_s=0.05))
    config = embedded.config.model_copy(
        update={"llm_model": "scripted/storyteller", "stream_every_s": 0.1})
    # a terminal, so the live view draws its frames (recorded as plain text)
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system=None,
                      record=True)
    notifier = ConsoleNotifier(console)

    def router() -> NotifierRouter:
        return NotifierRouter({"local": notifier})

    runtime = await build_runtime(config, router(), embedded.redis)
    worker = EmbeddedWorker(config, router, embedded.redis).start()
    session = ChatSession(EvobotService(runtime), notifier, console, tenant_id="local:t",
                          answer_timeout_s=60)
    try:
        await session.run(_lines("Tell me a story"))
    finally:
        worker.stop()
        await close_runtime(runtime)

    panels = console.export_text().split("╭─ evobot ")[1:]
    growing = [re.findall(r"w\d+", p) for p in panels if "writing…" in p]
    final = [p for p in panels if "v1 · " in p]
    assert len(final) == 1 and re.findall(r"w\d+", final[0]) == STORY.split()
    assert panels.index(final[0]) > 0 and len(growing) >= 2
    assert all(STORY.startswith(" ".join(words)) for words in growing)
    assert 0 < len(growing[0]) < len(STORY.split())  # partial text was on screen first
    assert len({len(words) for words in growing}) >= 2  # and it grew
