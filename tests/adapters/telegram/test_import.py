"""`/import` as the caption of an agent file in Telegram: the file is fetched with getFile
and becomes a new, announced version of the chat's agent — through the real webhook, with
the Bot API double."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from adapters.telegram.client import TelegramSettings
from doubles import telegram as u
from doubles.telegram import BotApiDouble
from tests.adapters.telegram.conftest import Harness, make_harness
from tests.conftest import Stack
from tests.engine.test_portable import agent_file

ALICE = u.user(701, "Alice")
PRIVATE = u.private(701)


@pytest.fixture
async def h(embedded: Stack, settings: TelegramSettings, double: BotApiDouble
            ) -> AsyncIterator[Harness]:
    harness = await make_harness(embedded, settings, double)
    try:
        yield harness
    finally:
        await harness.aclose()


async def test_an_agent_file_captioned_import_becomes_a_new_version(
    h: Harness, double: BotApiDouble
) -> None:
    agent = double.host_file("agent.json", json.dumps(agent_file()).encode())
    assert (await h.post(u.document_update(PRIVATE, ALICE, agent, "/import"))).status_code == 200

    texts = [m["text"] for m in double.sent(701) if "text" in m]
    assert any("Agent evolved: v1 → v2" in t for t in texts), texts
    assert any("Agent imported" in t and "shout (1 passed)" in t for t in texts), texts
    assert len(double.of("getFile")) == 1
    async with h.rt.repo("telegram:701") as repo:
        active = await repo.active_version()
    assert active.version == 2 and active.tools == ["shout@1"]
    assert await h.executions() == []  # a command, not an objective
