"""The engine's Notifier for Telegram tenants: answers with their keyboard, the typing action
while a job runs, failures, and evolution / tool / rollback announcements; one method per kind
of event, picked by adapters.common.dispatch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio import Redis
from telegram import Bot
from telegram.constants import ChatAction

from adapters.common.dispatch import Announcement, dispatch
from adapters.common.pacing import NoPacing
from adapters.telegram.client import Pacer, Sender, TelegramSettings, chat_pacer, make_bot
from adapters.telegram.outbound import (
    answer_keyboard,
    document_keyboard,
    render_answer,
    render_document,
    render_text,
)
from engine.types import (
    AnswerReady,
    Delivery,
    ExecutionFailed,
    MessageRef,
    OutboundEvent,
    Working,
)

log = logging.getLogger(__name__)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class TelegramNotifier:
    """Delivers engine events through the Bot API with the process's own PTB bot.

    For an answer, the returned Delivery's ref is the message that carries the keyboard
    (channel_id = chat id), so reactions on it find the execution.
    """

    def __init__(
        self,
        bot: Bot,
        *,
        pacer: Pacer | None = None,
        typing_every_s: float = 4.5,
        typing_max_s: float = 180.0,
    ) -> None:
        self.bot = bot
        self.sender = Sender(bot, pacer or NoPacing())
        self.typing_every_s = typing_every_s
        self.typing_max_s = typing_max_s
        self._typing: dict[int, asyncio.Task[None]] = {}
        self._ready = False
        self._init_lock: asyncio.Lock | None = None

    @classmethod
    def from_settings(cls, settings: TelegramSettings,
                      redis: Redis | None = None) -> TelegramNotifier:
        """`redis` paces posts per chat together with every other process (no pacing
        without it)."""
        return cls(make_bot(settings), pacer=chat_pacer(settings, redis))

    @classmethod
    def from_config(cls, config: Any, redis: Redis | None = None) -> TelegramNotifier:
        """From a bot.config.Config-like object with TELEGRAM_BOT_TOKEN set."""
        settings = TelegramSettings.from_config(config)
        if settings is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        return cls.from_settings(settings, redis)

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        if self._init_lock is None:
            self._init_lock = asyncio.Lock()
        async with self._init_lock:
            if not self._ready:
                await self.bot.initialize()
                self._ready = True

    async def aclose(self) -> None:
        for task in self._typing.values():
            task.cancel()
        self._typing.clear()
        if self._ready:
            await self.bot.shutdown()
            self._ready = False

    async def deliver(self, event: OutboundEvent) -> Delivery:
        await self._ensure_ready()
        return await dispatch(self, event)

    async def working(self, event: Working) -> Delivery:
        await self._start_typing(event)
        return Delivery()

    # --- typing -------------------------------------------------------------------------

    async def _typing_once(self, chat_id: int, thread_id: int | None) -> None:
        await self.bot.send_chat_action(chat_id, ChatAction.TYPING, message_thread_id=thread_id)

    async def _start_typing(self, event: Working) -> None:
        chat_id = _int(event.channel_id)
        if chat_id is None:
            return
        thread_id = _int(event.thread_id)
        try:
            await self._typing_once(chat_id, thread_id)
        except Exception:
            log.warning("typing action failed in %s", chat_id, exc_info=True)
            return
        self._stop_typing(event.execution_id)
        self._typing[event.execution_id] = asyncio.create_task(
            self._keep_typing(chat_id, thread_id), name=f"telegram-typing-{event.execution_id}"
        )

    async def _keep_typing(self, chat_id: int, thread_id: int | None) -> None:
        """Telegram shows an action for ~5 s: repeat it until the answer (bounded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.typing_max_s
        while loop.time() + self.typing_every_s < deadline:
            await asyncio.sleep(self.typing_every_s)
            try:
                await self._typing_once(chat_id, thread_id)
            except Exception:
                return

    def _stop_typing(self, execution_id: int) -> None:
        task = self._typing.pop(execution_id, None)
        if task is not None:
            task.cancel()

    # --- messages ---------------------------------------------------------------------

    async def answer(self, event: AnswerReady) -> Delivery:
        self._stop_typing(event.execution_id)
        chat_id = _int(event.channel_id)
        if chat_id is None:
            return Delivery()
        sent = await self.sender.send(
            chat_id, render_answer(event.text, event.footer),
            thread_id=_int(event.thread_id), reply_to=_int(event.reply_to),
            markup=answer_keyboard(event.execution_id),
        )
        last = sent[-1]
        return Delivery(
            ref=MessageRef(channel_id=str(chat_id), message_id=str(last.message_id),
                           thread_id=event.thread_id),
            extra={"message_ids": [m.message_id for m in sent]},
        )

    async def failed(self, event: ExecutionFailed) -> Delivery:
        self._stop_typing(event.execution_id)
        chat_id = _int(event.channel_id)
        if chat_id is None:
            return Delivery()
        sent = await self.sender.send(
            chat_id, render_text(f"⚠️ {event.reason}"),
            thread_id=_int(event.thread_id), reply_to=_int(event.reply_to),
        )
        return Delivery(ref=MessageRef(channel_id=str(chat_id),
                                       message_id=str(sent[-1].message_id)))

    async def announce(self, event: Announcement) -> Delivery:
        chat_id = _int(event.channel_id)
        if chat_id is None:
            log.info("%s for %s has no chat to go to", event.type, event.tenant_id)
            return Delivery()
        sent = await self.sender.send(
            chat_id, render_document(event.document), thread_id=_int(event.thread_id),
            markup=document_keyboard(event.document.buttons),
        )
        return Delivery(ref=MessageRef(channel_id=str(chat_id),
                                       message_id=str(sent[-1].message_id),
                                       thread_id=event.thread_id))


async def close_quietly(notifier: TelegramNotifier) -> None:
    with contextlib.suppress(Exception):
        await notifier.aclose()
