"""`evobot chat` on the embedded stack with a model that writes slowly: the answer panel grows
while the model writes, then becomes the final panel with its footer."""

from __future__ import annotations

import re

from engine.llm.scripted import ScriptedReply, register_script
from tests.adapters.console.chat import console_chat, lines
from tests.conftest import Stack

STORY = " ".join(f"w{i}" for i in range(30))


async def test_the_answer_grows_live_and_becomes_the_final_panel(embedded: Stack) -> None:
    register_script("storyteller", lambda request: ScriptedReply(content=STORY,
                                                                 token_delay_s=0.05))
    config = embedded.config.model_copy(
        update={"llm_model": "scripted/storyteller", "stream_every_s": 0.1})
    # a terminal, so the live view draws its frames (recorded as plain text)
    async with console_chat(config, embedded.redis, worker=True, width=100, terminal=True,
                            answer_timeout_s=60) as chat:
        await chat.session.run(lines("Tell me a story"))

    panels = chat.console.export_text().split("╭─ evobot ")[1:]
    growing = [re.findall(r"w\d+", p) for p in panels if "writing…" in p]
    final = [p for p in panels if "v1 · " in p]
    assert len(final) == 1 and re.findall(r"w\d+", final[0]) == STORY.split()
    assert panels.index(final[0]) > 0 and len(growing) >= 2
    assert all(STORY.startswith(" ".join(words)) for words in growing)
    assert 0 < len(growing[0]) < len(STORY.split())  # partial text was on screen first
    assert len({len(words) for words in growing}) >= 2  # and it grew
