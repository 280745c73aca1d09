"""`/attach agent.json`, then `/import` in the console: the exported agent becomes a new,
announced version of the local agent."""

from __future__ import annotations

import json
from pathlib import Path

from tests.adapters.console.chat import console_chat, lines
from tests.conftest import Stack
from tests.engine.test_portable import agent_file


async def test_attach_then_import_makes_the_file_a_new_version(embedded: Stack,
                                                               tmp_path: Path) -> None:
    (tmp_path / "agent.json").write_text(json.dumps(agent_file()))
    async with console_chat(embedded.config, embedded.redis) as chat:
        await chat.session.run(lines("/import", f"/attach {tmp_path / 'agent.json'}", "/import"))
        async with chat.runtime.repo("local:t") as repo:
            active = await repo.active_version()

    text = chat.output.getvalue()
    assert "Send one agent file" in text  # the first /import had nothing attached
    assert "Agent imported" in text and "Agent evolved: v1 → v2" in text
    assert "tools re-tested: shout (1 passed)" in text
    assert active.version == 2 and active.tools == ["shout@1"]
    assert chat.session.attached == []
