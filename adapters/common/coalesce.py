"""Many requests' Redis commands in one round trip.

Under load a web process sends a short Redis command or two per request (a delivery's claim
and confirmation, a feed event), and each costs a socket write and a read: system calls
that, on a VM, weigh more than the command itself. A `Coalescer` sends the commands issued
while a round trip is in flight together in the next one: one pipeline without MULTI, whose
replies go back to their callers in order. A lone command is sent at once (on the event
loop's next turn): nothing waits for company. See docs/ARCHITECTURE.md, "Ingress".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from engine.futures import resolve

log = logging.getLogger(__name__)

Command = Callable[[Pipeline], Any]  # adds one command to the pipeline it is given


class Coalescer:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: list[tuple[Command, asyncio.Future[Any] | str]] = []
        self._sending: asyncio.Task[None] | None = None

    async def call(self, command: Command) -> Any:
        """The command's reply; raises what Redis (or the connection) raised for it."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._add(command, future)
        return await future

    def send(self, command: Command, what: str) -> None:
        """Fire and forget: a failure is logged as "could not <what>"."""
        self._add(command, what)

    async def settled(self) -> None:
        """Until every command added so far has been sent (shutdown, tests)."""
        while self._sending is not None and not self._sending.done():
            await asyncio.wait([self._sending])

    def _add(self, command: Command, waiter: asyncio.Future[Any] | str) -> None:
        self._pending.append((command, waiter))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_all())

    async def _send_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                replies = await self._round_trip([command for command, _ in batch])
            except Exception as exc:  # the connection failed: this batch fails, not the next
                replies = [exc] * len(batch)
            except BaseException as exc:  # cancelled (shutdown): nobody may wait forever
                for _, waiter in batch + self._pending:
                    _settle(waiter, exc)
                self._pending = []
                raise
            for (_, waiter), reply in zip(batch, replies, strict=True):
                _settle(waiter, reply)

    async def _round_trip(self, commands: list[Command]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for command in commands:
                command(pipe)
            return list(await pipe.execute(raise_on_error=False))


def _settle(waiter: asyncio.Future[Any] | str, reply: Any) -> None:
    if isinstance(waiter, str):
        if isinstance(reply, BaseException):
            log.error("could not %s", waiter, exc_info=reply)
        return
    resolve(waiter, reply)
