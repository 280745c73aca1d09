"""`/attach agent.json`, then `/import` in the console: the exported agent becomes a new,
announced version of the local agent."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

from rich.console import Console

from adapters.console.app import ChatSession, ConsoleNotifier
from bot.wiring import build_runtime, close_runtime
from engine.notify import NotifierRouter
from engine.service import EvobotService
from tests.conftest import Stack
from tests.engine.test_portable import agent_file


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def test_attach_then_import_makes_the_file_a_new_version(embedded: Stack,
                                                               tmp_path: Path) -> None:
    (tmp_path / "agent.json").write_text(json.dumps(agent_file()))
    output = io.StringIO()
    console = Console(file=output, width=200, force_terminal=False, color_system=None)
    notifier = ConsoleNotifier(console)
    runtime = await build_runtime(embedded.config, NotifierRouter({"local": notifier}),
                                  embedded.redis)
    session = ChatSession(EvobotService(runtime), notifier, console, tenant_id="local:t")
    try:
        await session.run(_lines("/import", f"/attach {tmp_path / 'agent.json'}", "/import"))
        async with runtime.repo("local:t") as repo:
            active = await repo.active_version()
    finally:
        await close_runtime(runtime)

    text = output.getvalue()
    assert "Send one agent file" in text  # the first /import had nothing attached
    assert "Agent imported" in text and "Agent evolved: v1 → v2" in text
    assert "tools re-tested: shout (1 passed)" in text
    assert active.version == 2 and active.tools == ["shout@1"]
    assert session.attached == []
