"""Rolling back while a canary is live drops the canary: the people it served are back on
the active version, and the rollback is announced."""

from __future__ import annotations

from engine.types import Decision
from tests.conftest import Bot
from tests.engine.test_evolution_flow import ask, command, rate

WORKSPACE = "slack:T1"


async def test_rollback_drops_a_live_canary(bot: Bot) -> None:
    first = await ask(bot, "What is the capital of France?", tenant=WORKSPACE)
    await rate(bot, first, 2, "answer in French please", tenant=WORKSPACE)  # a member asks
    await bot.drain()
    [evolution] = bot.events("evolution")
    assert evolution.decision == Decision.CANARY  # type: ignore[attr-defined]
    served = await ask(bot, "And of Spain?", tenant=WORKSPACE)
    assert served.version == 2  # the asker is in the canary's audience

    reply = await command(bot, "rollback", tenant=WORKSPACE)
    assert reply.ok and "v2 → v1" in reply.document.plain_text()
    [rolled] = bot.events("rollback")
    assert (rolled.from_version, rolled.to_version) == (2, 1)  # type: ignore[attr-defined]
    after = await ask(bot, "And of Portugal?", tenant=WORKSPACE)
    assert after.version == 1
    again = await command(bot, "rollback", tenant=WORKSPACE)
    assert not again.ok and "no earlier version" in again.document.plain_text()
