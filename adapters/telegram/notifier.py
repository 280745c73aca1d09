"""The engine's Notifier for Telegram tenants: answers with their keyboard, the typing action
while a job runs, failures, and evolution / tool / rollback announcements; one method per kind
of event, picked by adapters.common.dispatch.

Answers stream while they are written (adapters/telegram/streaming.py): a draft in private
chats (sendMessageDraft; a bot whose API refuses drafts is remembered), elsewhere a message
edited at most every `edit_every_s` (`group_edit_every_s` in groups, which Telegram allows 20
messages a minute). A partial answer an interrupted attempt left (`replaces`) is edited, never
posted again; a failure after a partial answer marks it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis
from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import BadRequest, RetryAfter, TelegramError

from adapters.common.dispatch import Announcement, dispatch
from adapters.common.pacing import NoPacing
from adapters.common.streaming import Cadence, Refusals
from adapters.telegram.client import Pacer, Sender, TelegramSettings, chat_pacer, make_bot
from adapters.telegram.files import send_files
from adapters.telegram.inbound import PLATFORM
from adapters.telegram.outbound import (
    answer_keyboard,
    document_keyboard,
    render_answer,
    render_document,
    render_text,
)
from adapters.telegram.streaming import DraftsRefused, Place, TelegramStream
from engine.types import (
    AnswerDelta,
    AnswerReady,
    Delivery,
    ExecutionFailed,
    FileShared,
    MessageRef,
    OutboundEvent,
    Working,
)

log = logging.getLogger(__name__)

MAX_LIVE = 1000  # answers streaming in this process at most


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass
class LiveAnswer:
    """One execution's answer while it streams (in this process, for the whole execution)."""

    stream: TelegramStream
    cadence: Cadence
    lock: asyncio.Lock
    resumed: bool = False  # the message an earlier attempt left

    def ref(self, thread_id: str | None) -> MessageRef | None:
        first = self.stream.first_id
        if first is None:
            return None
        return MessageRef(channel_id=str(self.stream.place.chat_id), message_id=str(first),
                          thread_id=thread_id)


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
        edit_every_s: float = 1.0,
        group_edit_every_s: float = 3.0,
        redis: Redis | None = None,
    ) -> None:
        self.bot = bot
        self.sender = Sender(bot, pacer or NoPacing())
        self.typing_every_s = typing_every_s
        self.typing_max_s = typing_max_s
        self.edit_every_s = edit_every_s
        self.group_edit_every_s = group_edit_every_s
        # bots whose Bot API refuses sendMessageDraft (shared through Redis)
        self.no_drafts = Refusals(redis, namespace=PLATFORM, feature="drafts")
        self._typing: dict[int, asyncio.Task[None]] = {}
        self._live: dict[int, LiveAnswer] = {}  # by execution id, until its answer or failure
        self._ready = False
        self._init_lock: asyncio.Lock | None = None

    @classmethod
    def from_settings(cls, settings: TelegramSettings,
                      redis: Redis | None = None) -> TelegramNotifier:
        """`redis` paces posts per chat together with every other process (no pacing
        without it)."""
        return cls(make_bot(settings), pacer=chat_pacer(settings, redis), redis=redis)

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
        self._live.clear()
        if self._ready:
            await self.bot.shutdown()
            self._ready = False

    async def deliver(self, event: OutboundEvent) -> Delivery:
        await self._ensure_ready()
        delivery = await dispatch(self, event)
        if isinstance(event, AnswerReady) and event.files and delivery.ref is not None:
            await self._answer_files(event, delivery.ref)
        return delivery

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

    async def delta(self, event: AnswerDelta) -> Delivery:
        chat_id = _int(event.channel_id)
        if chat_id is None:
            return Delivery()
        live = self._live.get(event.execution_id) or await self._open(event, chat_id)
        async with live.lock:
            if live.cadence.due():
                live.cadence.shown()
                try:
                    await self._write(live, event.text)
                except RetryAfter as exc:  # the rate limiter's retries ran out: show it later
                    live.cadence.back_off(_seconds(exc))
        return Delivery(ref=live.ref(event.thread_id))

    async def answer(self, event: AnswerReady) -> Delivery:
        self._stop_typing(event.execution_id)
        chat_id = _int(event.channel_id)
        if chat_id is None:
            return Delivery()
        live = self._finishing(event.execution_id, chat_id, event.replaces, event.thread_id,
                               event.reply_to)
        if live is not None:
            try:
                async with live.lock:
                    ids = await live.stream.show(render_answer(event.text, event.footer),
                                                 markup=answer_keyboard(event.execution_id))
                return Delivery(
                    ref=MessageRef(channel_id=str(chat_id), message_id=str(ids[-1]),
                                   thread_id=event.thread_id),
                    extra={"message_ids": ids},
                )
            except BadRequest as exc:
                if not live.resumed:
                    raise
                log.warning("the partial answer in %s can't be edited (%s); posting anew",
                            chat_id, exc.message)
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
        live = self._finishing(event.execution_id, chat_id, event.replaces, event.thread_id,
                               event.reply_to)
        if live is not None:  # the partial answer says it was cut short
            async with live.lock:
                message_id = await live.stream.fail(event.reason)
            return Delivery(ref=MessageRef(channel_id=str(chat_id), message_id=str(message_id)))
        sent = await self.sender.send(
            chat_id, render_text(f"⚠️ {event.reason}"),
            thread_id=_int(event.thread_id), reply_to=_int(event.reply_to),
        )
        return Delivery(ref=MessageRef(channel_id=str(chat_id),
                                       message_id=str(sent[-1].message_id)))

    async def file(self, event: FileShared) -> Delivery:
        chat_id = _int(event.channel_id)
        if chat_id is None:
            log.info("a file for %s has no chat to go to", event.tenant_id)
            return Delivery()
        await self.sender.pacer.turn(str(chat_id))
        (sent,) = await send_files(self.bot, chat_id, [event.file],
                                   thread_id=_int(event.thread_id), caption=event.caption)
        return Delivery(ref=MessageRef(channel_id=str(chat_id), message_id=str(sent.message_id),
                                       thread_id=event.thread_id))

    async def _answer_files(self, event: AnswerReady, ref: MessageRef) -> None:
        """The files the agent's code made, as replies to its answer (adapters/telegram/
        files.py); a refused one is said in the chat, the answer stands either way."""
        chat_id = int(ref.channel_id)
        try:
            await self.sender.pacer.turn(str(chat_id))
            await send_files(self.bot, chat_id, event.files, thread_id=_int(event.thread_id),
                             reply_to=_int(ref.message_id))
        except TelegramError as exc:
            log.warning("sending %d files for execution %s failed: %s", len(event.files),
                        event.execution_id, exc)
            names = ", ".join(f.name for f in event.files)
            with contextlib.suppress(TelegramError):
                await self.sender.send(chat_id, render_text(
                    f"⚠️ I made {names} but Telegram refused to take them ({exc})."),
                    thread_id=_int(event.thread_id), reply_to=_int(ref.message_id))

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


    # --- streams ----------------------------------------------------------------------

    async def _open(self, event: AnswerDelta, chat_id: int) -> LiveAnswer:
        """A new answer's stream: a draft in a private chat (unless refused), else a message
        edited in place; the message an interrupted attempt left, if there is one."""
        place = Place(chat_id, _int(event.thread_id), _int(event.reply_to))
        resumed = _int(event.replaces.message_id) if event.replaces else None
        if resumed is not None:
            stream = TelegramStream(self.sender, place, sent=[resumed])
        elif chat_id > 0 and not await self.no_drafts.refused(self._bot_key()):
            stream = TelegramStream(self.sender, place, draft_id=event.execution_id or 1)
        else:
            stream = TelegramStream(self.sender, place)
        live = LiveAnswer(stream, self._cadence(stream), asyncio.Lock(),
                          resumed=resumed is not None)
        if len(self._live) >= MAX_LIVE:  # answers whose end never came (their job died)
            self._live.pop(next(iter(self._live)))
        self._live[event.execution_id] = live
        return live

    def _cadence(self, stream: TelegramStream) -> Cadence:
        if stream.draft_id is not None:
            return Cadence(0.0)  # drafts are made for this: the engine's pace
        private = stream.place.chat_id > 0
        return Cadence(self.edit_every_s if private else self.group_edit_every_s)

    async def _write(self, live: LiveAnswer, text: str) -> None:
        try:
            await live.stream.write(text)
        except DraftsRefused as exc:
            log.info("drafts refused (%s); editing a message instead", exc)
            await self.no_drafts.refuse(self._bot_key())
            live.stream.without_drafts()
            live.cadence = self._cadence(live.stream)
            live.cadence.shown()
            await live.stream.write(text)

    def _finishing(self, execution_id: int, chat_id: int, replaces: MessageRef | None,
                   thread_id: str | None, reply_to: str | None) -> LiveAnswer | None:
        """The stream an answer or failure ends: this process's, or the message an earlier
        attempt left; None when no message shows any of it yet (nor a draft)."""
        live = self._live.pop(execution_id, None)
        if live is not None and (live.stream.sent or live.stream.drafted):
            return live
        resumed = _int(replaces.message_id) if replaces else None
        if resumed is None:
            return None
        place = Place(chat_id, _int(thread_id), _int(reply_to))
        return LiveAnswer(TelegramStream(self.sender, place, sent=[resumed]), Cadence(0.0),
                          asyncio.Lock(), resumed=True)

    def _bot_key(self) -> str:
        return self.bot.token.split(":", 1)[0]  # the bot's id


async def close_quietly(notifier: TelegramNotifier) -> None:
    with contextlib.suppress(Exception):
        await notifier.aclose()
