"""The notifier's dispatch over the engine's outbound events, written once.

A platform notifier implements one method per kind of event; `dispatch` picks it. A new event
type in `engine.types.OutboundEvent` fails mypy here (`assert_never`) until it is handled.
"""

from __future__ import annotations

from typing import Protocol, assert_never

from engine.types import (
    AnswerDelta,
    AnswerReady,
    Delivery,
    EvolutionAnnounced,
    ExecutionFailed,
    FileShared,
    Notice,
    OutboundEvent,
    RolledBack,
    ToolAnnounced,
    Working,
)

Announcement = EvolutionAnnounced | ToolAnnounced | RolledBack | Notice


class EventHandlers(Protocol):
    async def working(self, event: Working) -> Delivery: ...

    async def answer(self, event: AnswerReady) -> Delivery: ...

    async def delta(self, event: AnswerDelta) -> Delivery: ...

    async def file(self, event: FileShared) -> Delivery: ...

    async def failed(self, event: ExecutionFailed) -> Delivery: ...

    async def announce(self, event: Announcement) -> Delivery: ...


async def dispatch(handlers: EventHandlers, event: OutboundEvent) -> Delivery:
    if isinstance(event, Working):
        return await handlers.working(event)
    if isinstance(event, AnswerReady):
        return await handlers.answer(event)
    if isinstance(event, AnswerDelta):
        return await handlers.delta(event)
    if isinstance(event, FileShared):
        return await handlers.file(event)
    if isinstance(event, ExecutionFailed):
        return await handlers.failed(event)
    if isinstance(event, EvolutionAnnounced | ToolAnnounced | RolledBack | Notice):
        return await handlers.announce(event)
    assert_never(event)
