"""OAuth installs (slack_sdk's async SQLAlchemy installation and state stores on the project
database): two workspaces, each its own tenant, isolated; tokens_revoked / app_uninstalled."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from doubles.slack import Deliveries, SlackDouble
from tests.adapters.slack.conftest import SlackWeb, slack_config, start_web, stop_web
from tests.conftest import Stack

CHANNEL_A, CHANNEL_B = "C0ACMEGEN", "C0GLOBEX"


@pytest.fixture
async def multi(stack: Stack, double: SlackDouble) -> AsyncIterator[SlackWeb]:
    sw = await start_web(stack, double, slack_config(stack, double, multi=True))
    try:
        yield sw
    finally:
        await stop_web(sw)


async def install(client: httpx.AsyncClient, double: SlackDouble, team_id: str) -> None:
    """Slack's OAuth v2 flow: /slack/install → (user approves) → /slack/oauth_redirect."""
    page = await client.get("/slack/install")
    assert page.status_code == 200, page.text
    link = re.search(r'href="(https://slack.com/oauth/v2/authorize\?[^"]+)"', page.text)
    assert link is not None, page.text
    state = re.search(r"state=([^&\"]+)", link.group(1))
    assert state is not None and "scope=app_mentions" in link.group(1).replace("%3A", ":")
    cookie = page.headers["set-cookie"].split(";", 1)[0]
    done = await client.get(
        "/slack/oauth_redirect",
        params={"code": double.install_code(team_id), "state": state.group(1)},
        headers={"Cookie": cookie},
    )
    assert done.status_code == 200, done.text
    # a replayed state is refused (the state store consumed it)
    replay = await client.get(
        "/slack/oauth_redirect",
        params={"code": double.install_code(team_id), "state": state.group(1)},
        headers={"Cookie": cookie},
    )
    assert replay.status_code in (400, 401), replay.text


async def test_two_workspaces_install_and_stay_isolated(multi: SlackWeb,
                                                        deliveries: Deliveries) -> None:
    double = multi.double
    acme, globex = double.add_workspace("T0ACME"), double.add_workspace("T0GLOBEX")
    double.add_user("T0ACME", "U0ANN", admin=True)
    double.add_user("T0GLOBEX", "U0GUS", admin=True)
    not_installed, _ = deliveries.app_mention(acme, "U0ANN", CHANNEL_A, "too early")
    assert (await multi.post(not_installed)).status_code != 500
    assert await multi.executions() == []

    await install(multi.client, multi.double, "T0ACME")
    await install(multi.client, multi.double, "T0GLOBEX")

    for ws, user, channel, text in [(acme, "U0ANN", CHANNEL_A, "acme question"),
                                    (globex, "U0GUS", CHANNEL_B, "globex question")]:
        delivery, _ = deliveries.app_mention(ws, user, channel, text)
        assert (await multi.post(delivery)).status_code == 200
    await multi.drain()
    by_channel = {c.params["channel"]: c for c in double.posts()}
    assert by_channel[CHANNEL_A].token == acme.token
    assert by_channel[CHANNEL_B].token == globex.token
    tenants = {e.objective: e.tenant_id for e in await multi.executions()}
    assert tenants == {"acme question": "slack:T0ACME", "globex question": "slack:T0GLOBEX"}

    # 👎 + comment in Acme evolves Acme only
    answer_ts = by_channel[CHANNEL_A].response["ts"]
    down = deliveries.reaction(acme, "U0ANN", "-1", CHANNEL_A, answer_ts)
    assert (await multi.post(down)).status_code == 200
    reply, _ = deliveries.message(acme, "U0ANN", CHANNEL_A, "answer in French please",
                                  thread_ts=by_channel[CHANNEL_A].params["thread_ts"])
    assert (await multi.post(reply)).status_code == 200
    await multi.drain()
    assert [c.params["blocks"][0]["text"]["text"] for c in double.posts(CHANNEL_A)
            if "thread_ts" not in c.params] == ["Agent evolved: v1 → v2"]
    assert [c for c in double.posts(CHANNEL_B) if "thread_ts" not in c.params] == []

    url = double.response_url()
    acme_status = await multi.post(deliveries.slash_command(acme, "U0ANN", CHANNEL_A, "status",
                                                            response_url=url))
    globex_status = await multi.post(deliveries.slash_command(globex, "U0GUS", CHANNEL_B,
                                                              "status", response_url=url))
    assert acme_status.json()["blocks"][1]["fields"][0]["text"].endswith("v2")
    assert globex_status.json()["blocks"][1]["fields"][0]["text"].endswith("v1")

    # Globex cannot rate Acme's answer by guessing its execution id
    [actions] = [b for b in by_channel[CHANNEL_A].params["blocks"] if b["type"] == "actions"]
    up = actions["elements"][0]
    assert (await multi.post(deliveries.block_actions(globex, "U0GUS", CHANNEL_B, answer_ts,
                                                      up))).status_code == 200
    assert {f.tenant_id for f in await multi.feedback()} == {"slack:T0ACME"}


async def test_tokens_revoked_and_app_uninstalled(multi: SlackWeb,
                                                  deliveries: Deliveries) -> None:
    double = multi.double
    acme, globex = double.add_workspace("T0ACME"), double.add_workspace("T0GLOBEX")
    await install(multi.client, multi.double, "T0ACME")
    await install(multi.client, multi.double, "T0GLOBEX")
    delivery, _ = deliveries.app_mention(acme, "U0ANN", CHANNEL_A, "before revocation")
    assert (await multi.post(delivery)).status_code == 200

    double.revoke("T0ACME")  # Slack revokes first, then tells the app
    double.revoke("T0GLOBEX")
    assert (await multi.post(deliveries.tokens_revoked(acme))).status_code == 200
    assert (await multi.post(deliveries.app_uninstalled(globex))).status_code == 200
    store = multi.bot.installation_store
    assert await store.async_find_bot(enterprise_id=None, team_id="T0ACME") is None
    assert await store.async_find_installation(enterprise_id=None, team_id="T0GLOBEX") is None

    # the job queued before the revocation finds no token: nothing posted, nothing crashes
    await multi.drain()
    assert double.posts() == []
    after, _ = deliveries.app_mention(acme, "U0ANN", CHANNEL_A, "after revocation")
    await multi.post(after)
    assert [e.objective for e in await multi.executions()] == ["before revocation"]
