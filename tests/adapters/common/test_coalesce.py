"""The Coalescer against a real (embedded) Redis: commands issued together go in one round
trip and each caller gets its own reply, or its own error; a caller that goes away, or a
shutdown mid-flight, leaves nobody waiting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, ResponseError

from adapters.common.coalesce import Coalescer
from tests.conftest import Stack, count_pipelines


@pytest.fixture
async def redis(embedded: Stack) -> AsyncIterator[Redis]:
    client = embedded.redis.asyncio_client()
    await client.flushdb()
    yield client
    await client.aclose()


async def test_commands_issued_together_share_one_round_trip(redis: Redis) -> None:
    commands = Coalescer(redis)
    pipelines = count_pipelines(redis)
    replies = await asyncio.gather(*(commands.call(lambda pipe, i=i: pipe.incrby("n", i))
                                     for i in range(1, 31)))
    assert replies == [sum(range(1, i + 1)) for i in range(1, 31)]  # in order, each its own
    assert len(pipelines) == 1 and pipelines[0] == {"transaction": False}


async def test_a_lone_command_is_sent_at_once_and_later_ones_follow(redis: Redis) -> None:
    commands = Coalescer(redis)
    pipelines = count_pipelines(redis)
    assert await commands.call(lambda pipe: pipe.set("a", b"1")) is True
    assert await commands.call(lambda pipe: pipe.get("a")) == b"1"
    assert len(pipelines) == 2


async def test_an_error_reaches_only_the_caller_whose_command_failed(redis: Redis) -> None:
    commands = Coalescer(redis)
    await redis.set("text", b"not a number")
    good, bad = await asyncio.gather(commands.call(lambda pipe: pipe.incr("n")),
                                     commands.call(lambda pipe: pipe.incr("text")),
                                     return_exceptions=True)
    assert good == 1
    assert isinstance(bad, ResponseError)


async def test_a_failed_fire_and_forget_command_is_logged(
        redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
    commands = Coalescer(redis)
    await redis.set("text", b"not a number")
    with caplog.at_level(logging.ERROR, logger="adapters.common.coalesce"):
        commands.send(lambda pipe: pipe.incr("text"), "count the texts")
        commands.send(lambda pipe: pipe.incr("n"), "count")
        await commands.settled()
    assert "could not count the texts" in caplog.text
    assert caplog.text.count("could not") == 1
    assert await redis.get("n") == b"1"


async def test_with_redis_down_every_caller_gets_the_connection_error() -> None:
    down = Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    commands = Coalescer(down)
    results = await asyncio.gather(*(commands.call(lambda pipe: pipe.get("k"))
                                     for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    await down.aclose()


async def test_a_caller_that_goes_away_does_not_disturb_the_others(redis: Redis) -> None:
    commands = Coalescer(redis)
    gone = asyncio.create_task(commands.call(lambda pipe: pipe.incr("n")))
    kept = asyncio.create_task(commands.call(lambda pipe: pipe.incr("n")))
    await asyncio.sleep(0)  # both queued
    gone.cancel()
    assert await kept == 2  # the command was sent all the same
    assert gone.cancelled()


async def test_cancelled_mid_flight_nobody_waits_forever(redis: Redis) -> None:
    commands = Coalescer(redis)
    waiting = asyncio.create_task(commands.call(lambda pipe: pipe.blpop(["never"], 5)))
    await asyncio.sleep(0.05)  # the round trip is in flight
    assert commands._sending is not None
    commands._sending.cancel()  # what shutting the loop down does
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 1)
