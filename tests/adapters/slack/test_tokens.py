"""Bot tokens of installed workspaces, read through Bolt's installation store and kept for a
minute; an idle workspace's token is not kept at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.slack.tokens import InstallationTokens, installation_store


async def _install(store: AsyncInstallationStore, team: str, token: str) -> None:
    await store.async_save(Installation(app_id="A", team_id=team, user_id="U",
                                        bot_token=token, bot_id="B", bot_user_id="UB"))


async def test_an_idle_workspace_token_is_dropped_and_read_again_when_needed(
        tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}")
    try:
        store = await installation_store(engine, client_id="client")
        for team in ("T1", "T2"):
            await _install(store, team, f"xoxb-{team}")
        tokens = InstallationTokens(store, ttl_s=0.2)
        assert await tokens.token_for("slack:T1") == "xoxb-T1"
        assert await tokens.token_for("slack:T2") == "xoxb-T2"
        await asyncio.sleep(0.3)  # both idle past the TTL
        assert await tokens.token_for("slack:T1") == "xoxb-T1"
        assert set(tokens._cache) == {"slack:T1"}  # T2 went idle: nothing kept for it
        await _install(store, "T2", "xoxb-new")  # reinstalled meanwhile
        assert await tokens.token_for("slack:T2") == "xoxb-new"
    finally:
        await engine.dispose()
