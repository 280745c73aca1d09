"""The event feed: every outbound event of a tenant, published on Redis pub/sub, so the web
process can wait for an answer (execute), stream it (SSE) and follow a tenant (WebSocket)
whichever process produced it.

Publisher side: `EventFeed` is a `Notifier` (the `api` platform's own, and beside every
other platform's through `with_feed`); it also publishes `queued` and `feedback`, which are
no engine events. Subscriber side: one `EventHub` per web process holds a single pattern
subscription and hands each message to the local queues that follow its tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from adapters.common.coalesce import Coalescer
from engine.ports import Notifier
from engine.types import (
    Accepted,
    AnswerReady,
    Delivery,
    FeedbackResult,
    FileShared,
    InboundFeedback,
    InboundMessage,
    OutboundEvent,
    TenantId,
)

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "evobot:feed:"
API_CHANNEL = "api"  # the channel id of objectives sent over the REST API
# engine event type → the name the stream uses; `answer_delta` carries the text so far
WIRE_TYPES = {"working": "started", "answer_delta": "answer_delta", "answer": "answer",
              "execution_failed": "execution_failed", "evolution": "evolution", "tool": "tool",
              "rollback": "rollback", "notice": "notice"}
FINISHED = ("answer", "execution_failed")


def wire_event(type_: str, tenant_id: TenantId, data: dict[str, Any]) -> dict[str, Any]:
    """One stream event, the seed's shape: type, data, timestamp (plus who it concerns)."""
    return {"type": type_, "tenant_id": tenant_id, "execution_id": data.get("execution_id"),
            "data": data, "timestamp": datetime.now(UTC).isoformat()}


def from_outbound(event: OutboundEvent) -> dict[str, Any]:
    data = event.model_dump(mode="json", exclude={"document", "type", "tenant_id", "files",
                                                  "file"})
    document = getattr(event, "document", None)
    if document is not None:
        data["summary"] = document.summary
    files = event.files if isinstance(event, AnswerReady) else (
        [event.file] if isinstance(event, FileShared) else [])
    if files:  # names only: the bytes stay out of Redis (download links: adapters/api/uploads)
        data["files"] = [{"name": f.name, "media_type": f.media_type, "size": len(f.data)}
                         for f in files]
    return wire_event(WIRE_TYPES.get(event.type, event.type), event.tenant_id, data)


def _tenant_of(channel: bytes | str) -> str:
    """The tenant whose feed a channel is (its name is CHANNEL_PREFIX + the tenant id)."""
    name = channel.decode() if isinstance(channel, bytes) else channel
    return name.removeprefix(CHANNEL_PREFIX)


def _message(event: dict[str, Any]) -> tuple[str, str]:
    """The pub/sub channel and message that carry one event."""
    return CHANNEL_PREFIX + event["tenant_id"], json.dumps(event)


class EventFeed:
    """Publishes a tenant's events on `evobot:feed:<tenant>`."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._commands = Coalescer(redis)  # events published together share a round trip

    async def publish(self, event: dict[str, Any]) -> None:
        channel, message = _message(event)
        try:
            await self._commands.call(lambda pipe: pipe.publish(channel, message))
        except Exception:  # the feed is a view: losing it must not fail the job
            log.exception("could not publish %s to the event feed", event["type"])

    async def deliver(self, event: OutboundEvent) -> Delivery:
        await self.publish(from_outbound(event))
        return Delivery()

    async def aclose(self) -> None:
        await self._commands.settled()
        await self.redis.aclose()

    async def queued(self, message: InboundMessage, accepted: Accepted) -> None:
        """Published in the background: the platform's acknowledgement doesn't wait for a
        view (the job is queued already, so `started` may come first either way)."""
        channel, event = _message(wire_event("queued", message.tenant_id, {
            "execution_id": accepted.execution_id, "version": accepted.version,
            "channel_id": message.channel_id, "user_id": message.user_id,
        }))
        self._commands.send(lambda pipe: pipe.publish(channel, event),
                            f"publish queued objective {accepted.execution_id} to the feed")

    async def rated(self, feedback: InboundFeedback, result: FeedbackResult) -> None:
        if result.recorded:
            await self.publish(wire_event("feedback", feedback.tenant_id, {
                "execution_id": result.execution_id, "rating": result.rating,
                "evolution_queued": result.evolution_queued,
            }))


class WithFeed:
    """A platform's notifier plus the feed. Objectives sent over the API (channel `api`) are
    answered on the feed only, never posted to the platform; everything else goes to both."""

    def __init__(self, platform: Notifier | None, feed: EventFeed) -> None:
        self.platform = platform
        self.feed = feed

    async def deliver(self, event: OutboundEvent) -> Delivery:
        delivery = Delivery()
        try:
            if self.platform is not None and event.channel_id != API_CHANNEL:
                delivery = await self.platform.deliver(event)
        finally:
            await self.feed.deliver(event)
        return delivery


class EventHub:
    """The web process's one subscription to every tenant's feed, fanned out to local
    followers (an execute call waiting, an SSE response, a WebSocket)."""

    def __init__(self, redis: Redis, *, queue_size: int = 1000) -> None:
        self.redis = redis
        self.queue_size = queue_size
        self.followers: dict[TenantId, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="evobot-event-hub")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.redis.aclose()

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                    self._ready.set()
                    await self._pump(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event feed subscription lost; reconnecting")
                await asyncio.sleep(1)

    async def _pump(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "pmessage":
                continue
            tenant_id = _tenant_of(message["channel"])
            followers = self.followers.get(tenant_id)
            if not followers:
                continue  # nobody here follows this tenant: not even decoded
            try:
                event = json.loads(message["data"])
            except (TypeError, ValueError):
                continue
            for queue in list(followers):
                if queue.full():
                    log.warning("a slow follower of %s dropped an event", tenant_id)
                    continue
                queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def follow(self, tenant_id: TenantId) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of the tenant's events from now on, until the block ends."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.queue_size)
        self.followers[tenant_id].add(queue)
        try:
            yield queue
        finally:
            self.followers[tenant_id].discard(queue)
            if not self.followers[tenant_id]:
                del self.followers[tenant_id]


async def next_for(queue: asyncio.Queue[dict[str, Any]], execution_id: int,
                   deadline: float) -> dict[str, Any] | None:
    """The next event about one execution before the loop time `deadline`; None on timeout."""
    loop = asyncio.get_running_loop()
    while (left := deadline - loop.time()) > 0:
        try:
            event = await asyncio.wait_for(queue.get(), timeout=left)
        except TimeoutError:
            return None
        if event.get("execution_id") == execution_id:
            return event
    return None
