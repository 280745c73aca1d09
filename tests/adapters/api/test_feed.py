"""The event feed's `queued` events: published after the objective is acknowledged, every one
of them and in order, a burst in one round trip; a dead Redis loses only the view. The web
process's hub hands a tenant's events to that tenant's followers only, and doesn't even
decode the events of tenants nobody there follows."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.api import events
from adapters.api.events import CHANNEL_PREFIX, EventFeed, EventHub
from engine.types import Accepted, InboundMessage
from tests.conftest import SYSTEM_REDIS, count_pipelines, need_service


def _message(n: int) -> InboundMessage:
    return InboundMessage(tenant_id=f"slack:T{n % 3}", channel_id="C1", user_id="U1",
                          text=f"objective {n}", message_id=f"m{n}")


async def test_a_burst_of_accepted_objectives_is_published_in_order_in_one_round_trip(
) -> None:
    need_service("Redis", 6379)
    listener, publisher = Redis.from_url(SYSTEM_REDIS), Redis.from_url(SYSTEM_REDIS)
    feed = EventFeed(publisher)
    pipelines = count_pipelines(publisher)
    pubsub = listener.pubsub()
    await pubsub.psubscribe(CHANNEL_PREFIX + "slack:*")
    await pubsub.get_message(timeout=1)  # the subscription's confirmation
    try:
        for n in range(20):
            await feed.queued(_message(n), Accepted(execution_id=n, version=1))
        received: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while len(received) < 20:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    received.append(json.loads(message["data"]))
        assert [e["execution_id"] for e in received] == list(range(20))
        assert all(e["type"] == "queued" and e["tenant_id"] == f"slack:T{e['execution_id'] % 3}"
                   for e in received)
        assert len(pipelines) == 1
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await feed.aclose()


async def test_with_redis_down_an_accepted_objective_still_returns_and_the_loss_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    feed = EventFeed(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1))
    with caplog.at_level(logging.ERROR, logger="adapters.api.events"):
        async with asyncio.timeout(1):  # no wait on Redis before the acknowledgement
            await feed.queued(_message(1), Accepted(execution_id=1, version=1))
        await feed.aclose()  # waits for the publishing in the background
    assert "could not publish queued objective 1 to the feed" in caplog.text


async def test_the_hub_gives_followers_their_tenants_events_and_skips_the_rest_unread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    need_service("Redis", 6379)
    hub, feed = EventHub(Redis.from_url(SYSTEM_REDIS)), EventFeed(Redis.from_url(SYSTEM_REDIS))
    decoded: list[Any] = []
    loads = json.loads
    monkeypatch.setattr(events.json, "loads", lambda data: decoded.append(data) or loads(data))
    await hub.start()
    try:
        async with hub.follow("slack:T0") as followed:
            for n in range(1, 31):  # slack:T1 and slack:T2, nobody here follows them
                if n % 3:
                    await feed.queued(_message(n), Accepted(execution_id=n, version=1))
            await feed.queued(_message(30), Accepted(execution_id=30, version=1))
            async with asyncio.timeout(5):
                event = await followed.get()
        assert (event["tenant_id"], event["execution_id"]) == ("slack:T0", 30)
        assert followed.empty() and len(decoded) == 1
    finally:
        await hub.stop()
        await feed.aclose()
