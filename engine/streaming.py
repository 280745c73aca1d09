"""An answer while it is being written: the runner reports the text so far, and a pump
delivers it as `AnswerDelta` events at the pace a chat platform can take.

The pump keeps only the latest text and runs in its own task, so a slow platform never slows
generation and texts written while a delivery is under way coalesce into the next one. A
delta goes out `every_s` after new text appeared (then at most every `every_s`): an answer
written faster than that is posted whole, in one platform call. See docs/ARCHITECTURE.md,
Flow 1. `every_s` 0 turns streaming off: the model isn't asked for a stream at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from engine.types import Delivery, MessageRef

log = logging.getLogger(__name__)

# delivers the text so far (to the message an interrupted attempt left, if there is one);
# reports the message it became. Within one stream the notifier knows its own message.
DeliverText = Callable[[str, MessageRef | None], Awaitable[Delivery]]
RememberRef = Callable[[MessageRef], Awaitable[None]]


class AnswerStream:
    """Streams one answer. `ref` is the partial message on the platform: the one an earlier,
    interrupted attempt left (`replaces`), else the one this stream's first delta became."""

    def __init__(self, deliver: DeliverText, *, every_s: float,
                 replaces: MessageRef | None = None, remember: RememberRef | None = None
                 ) -> None:
        self.ref = replaces
        self._replaces = replaces
        self._deliver = deliver
        self._remember = remember
        self._every_s = every_s
        self._latest = self._sent = ""
        self._written = asyncio.Event()  # new text, or closing
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def writer(self) -> Callable[[str], None] | None:
        """What the runner reports the text so far to; None when streaming is off."""
        return self.write if self._every_s > 0 else None

    def write(self, text: str) -> None:
        """The answer so far (a step that turned into tool calls restarts it)."""
        self._latest = text
        self._written.set()

    async def __aenter__(self) -> AnswerStream:
        if self.writer is not None:
            self._task = asyncio.create_task(self._pump(), name="evobot-answer-stream")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            await self._cancel()  # cancelled (the worker is going away): don't wait
        else:
            await self.close()

    async def close(self) -> None:
        """Stop streaming. A delivery under way completes, so `ref` names its message."""
        self._closing.set()
        self._written.set()
        if self._task is not None:
            await self._task

    async def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _pump(self) -> None:
        while await self._settled():
            if self._latest.strip() and self._latest != self._sent:
                await self._send(self._latest)

    async def _settled(self) -> bool:
        """Wait for new text, then `every_s` more so what follows coalesces; False once the
        stream is closing (the answer itself carries the whole text)."""
        await self._written.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), self._every_s)
        self._written.clear()
        return not self._closing.is_set()

    async def _send(self, text: str) -> None:
        try:
            delivery = await self._deliver(text, self._replaces)
            self._sent = text
            if self.ref is None and delivery.ref is not None:
                self.ref = delivery.ref
                if self._remember is not None:
                    await self._remember(delivery.ref)
        except Exception:  # a platform or database hiccup loses one delta, never the answer
            log.warning("delivering a partial answer failed", exc_info=True)
