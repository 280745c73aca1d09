"""RedisDedup against a real (embedded) Redis: each delivery claimed exactly once, kept once
confirmed, handled again once released; open when Redis is down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from adapters.common.dedup import RedisDedup
from tests.conftest import Stack


@pytest.fixture
async def redis(embedded: Stack) -> AsyncIterator[Redis]:
    client = embedded.redis.asyncio_client()
    yield client
    await client.aclose()


async def test_each_delivery_is_claimed_once_even_when_claimed_together(redis: Redis) -> None:
    dedup = RedisDedup(redis, namespace="test")
    ids = [str(i) for i in range(40)]
    first = await asyncio.gather(*(dedup.claim(i) for i in ids))
    again = await asyncio.gather(*(dedup.claim(i) for i in [*ids, *ids]))
    assert all(first) and not any(again)


async def test_a_confirmed_delivery_is_kept_past_the_claim(redis: Redis) -> None:
    dedup = RedisDedup(redis, namespace="test", claim_ttl_s=60, keep_ttl_s=3600)
    assert await dedup.claim("7")
    await dedup.confirm("7")  # returns at once: the claim holds until the confirmation lands
    assert not await dedup.claim("7")
    await dedup.settled()
    assert await redis.ttl("evobot:test:delivery:7") > 60


async def test_a_released_delivery_is_handled_again(redis: Redis) -> None:
    dedup = RedisDedup(redis, namespace="test")
    assert await dedup.claim("8")
    await dedup.release("8")
    assert await dedup.claim("8")
    assert not await dedup.claim("8")


async def test_redis_down_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    down = Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    dedup = RedisDedup(down, namespace="test")
    with caplog.at_level(logging.ERROR, logger="adapters.common.dedup"):
        assert await dedup.claim("1") and await dedup.claim("1")
        await dedup.confirm("1")
        await dedup.release("1")
        await dedup.settled()
    assert "dedup unavailable; handling 1 anyway" in caplog.text
    assert "could not confirm delivery 1" in caplog.text
    assert "could not release delivery 1" in caplog.text
    await down.aclose()
