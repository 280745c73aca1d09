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
from tests.conftest import Stack, count_pipelines


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


def _count_round_trips(client: Redis, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every pipeline and every lone command `client` sends from now on."""
    round_trips: list[object] = count_pipelines(client)
    direct = client.execute_command

    async def counted(*args: object, **options: object) -> object:
        round_trips.append(args)
        return await direct(*args, **options)

    monkeypatch.setattr(client, "execute_command", counted)
    return round_trips


async def test_deliveries_handled_together_share_round_trips(
        redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of claims, then of confirmations: one round trip each, not one per delivery."""
    dedup = RedisDedup(redis, namespace="test", claim_ttl_s=60, keep_ttl_s=3600)
    round_trips = _count_round_trips(redis, monkeypatch)
    ids = [f"burst-{i}" for i in range(40)]
    assert all(await asyncio.gather(*(dedup.claim(i) for i in ids)))
    for delivery_id in ids:
        await dedup.confirm(delivery_id)
    await dedup.settled()
    assert len(round_trips) == 2
    assert min([await redis.ttl(f"evobot:test:delivery:{i}") for i in ids]) > 60


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
