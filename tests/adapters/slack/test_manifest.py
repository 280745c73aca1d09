"""adapters/slack/manifest.yml agrees with the app: scopes, events, URLs and the `/evobot`
usage hint (derived from the command registry, engine.commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack import inbound
from adapters.slack.app import BOT_SCOPES, COMMAND
from engine.commands import listed


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    path = Path(inbound.__file__).parent / "manifest.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_manifest_matches_the_app(manifest: dict[str, Any]) -> None:
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    # files shared with the bot are downloaded; the files answers make are uploaded
    assert {"files:read", "files:write"} <= set(BOT_SCOPES)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [COMMAND]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"app_mention", "message.im", "reaction_added", "reaction_removed",
            "tokens_revoked", "app_uninstalled"} <= set(events)
    urls = {manifest["settings"]["event_subscriptions"]["request_url"],
            manifest["settings"]["interactivity"]["request_url"],
            manifest["features"]["slash_commands"][0]["url"]}
    assert {u.rsplit("/", 2)[-2:] == ["slack", "events"] for u in urls} == {True}
    assert manifest["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")


def test_usage_hint_lists_every_listed_command(manifest: dict[str, Any]) -> None:
    [command] = manifest["features"]["slash_commands"]
    hint = command["usage_hint"]
    assert len(hint) <= 1000  # Slack's manifest schema limit
    offered = hint.split(" | ")
    missing = [c.usage for c in listed() if c.usage not in offered]
    assert missing == [], f"add to usage_hint in manifest.yml: {missing}"
