"""Talking to the Bot API: settings, the PTB bot (AIORateLimiter with retries, so RetryAfter is
honoured), per-chat pacing shared by every process, and sending, editing and drafting HTML
chunks with the plain-text retry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from adapters.common.pacing import NoPacing, RedisPacer
from adapters.telegram.inbound import PLATFORM
from adapters.telegram.outbound import Chunk

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.telegram.org/bot"
ReplyMarkup = InlineKeyboardMarkup | ForceReply
CONNECT_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
# what PTB's NetworkError says for the Bot API's own 5xx: nothing was sent, so a retry
# can't duplicate the message
SERVER_ERRORS = ("bad gateway", "internal server error", "service unavailable",
                 "gateway timeout")


@dataclass(frozen=True)
class TelegramSettings:
    """What the adapter needs from the configuration (bot.config.Config maps onto it)."""

    token: str
    api_url: str = DEFAULT_API_URL
    webhook_secret: str | None = None
    webhook_url: str | None = None  # when set, `evobot serve` registers it with setWebhook
    chat_interval_s: float = 1.0  # per-chat pacing of outgoing messages
    max_retries: int = 3  # RetryAfter retries (AIORateLimiter)
    poll_timeout_s: float = 10.0  # getUpdates long-polling timeout

    @classmethod
    def from_config(cls, config: Any) -> TelegramSettings | None:
        """From an object with the `telegram_*` attributes of bot.config.Config; None when no
        bot token is configured."""
        token = getattr(config, "telegram_bot_token", None)
        if not token:
            return None
        return cls(
            token=token,
            api_url=getattr(config, "telegram_api_url", None) or DEFAULT_API_URL,
            webhook_secret=getattr(config, "telegram_webhook_secret", None) or None,
            webhook_url=getattr(config, "telegram_webhook_url", None) or None,
            chat_interval_s=float(getattr(config, "telegram_pace_s", 1.0)),
            max_retries=int(getattr(config, "telegram_max_retries", 3)),
            poll_timeout_s=float(getattr(config, "telegram_poll_timeout_s", 10.0)),
        )

    @property
    def base_url(self) -> str:
        return self.api_url

    @property
    def base_file_url(self) -> str:
        """`…/bot` → `…/file/bot`, as with api.telegram.org and local Bot API servers."""
        url = self.api_url.rstrip("/")
        if url.endswith("/bot"):
            return url[: -len("/bot")] + "/file/bot"
        return url


def rate_limiter(settings: TelegramSettings) -> AIORateLimiter:
    return AIORateLimiter(max_retries=settings.max_retries)


def make_bot(settings: TelegramSettings) -> ExtBot[int]:
    """A standalone bot (notifiers in worker processes) with the same API URL and limiter."""
    return ExtBot(
        settings.token,
        base_url=settings.base_url,
        base_file_url=settings.base_file_url,
        request=HTTPXRequest(connection_pool_size=16, read_timeout=30.0),
        rate_limiter=rate_limiter(settings),
    )


class Pacer(Protocol):
    """Waits for this process's turn to post in a chat (adapters.common.pacing)."""

    async def turn(self, chat: str) -> None: ...


def chat_pacer(settings: TelegramSettings, redis: Redis | None) -> Pacer:
    """At most one message per chat_interval_s in each chat (Telegram's per-chat limit),
    counted across every process through Redis; group-wide and global limits are
    AIORateLimiter's. Without Redis (tests), no pacing."""
    if redis is None:
        return NoPacing()
    return RedisPacer(redis, namespace=PLATFORM, interval_s=settings.chat_interval_s)


def is_parse_error(exc: BadRequest) -> bool:
    return "can't parse entities" in exc.message.lower() or "can't find end" in exc.message.lower()


def _thread_missing(exc: BadRequest) -> bool:
    return "thread not found" in exc.message.lower()


class Sender:
    """Sends chunks as HTML; retries as plain text when Telegram rejects the formatting."""

    def __init__(self, bot: Bot, pacer: Pacer) -> None:
        self.bot = bot
        self.pacer = pacer

    async def send(
        self,
        chat_id: int,
        chunks: Sequence[Chunk],
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
        markup: ReplyMarkup | None = None,
    ) -> list[Message]:
        """Every chunk in order: the first replies to `reply_to`, the last carries `markup`."""
        sent = []
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            sent.append(
                await self.send_one(
                    chat_id, chunk, thread_id=thread_id,
                    reply_to=reply_to if index == 0 else None,
                    markup=markup if last else None,
                )
            )
        return sent

    async def send_one(
        self,
        chat_id: int,
        chunk: Chunk,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
        markup: ReplyMarkup | None = None,
    ) -> Message:
        kwargs: dict[str, Any] = {
            "chat_id": chat_id,
            "message_thread_id": thread_id,
            "reply_markup": markup,
            "link_preview_options": LinkPreviewOptions(is_disabled=True),
        }
        if reply_to is not None:
            kwargs["reply_parameters"] = ReplyParameters(
                message_id=reply_to, allow_sending_without_reply=True
            )
        await self.pacer.turn(str(chat_id))
        try:
            return await self._send_html(chunk, kwargs)
        except BadRequest as exc:
            if _thread_missing(exc) and thread_id is not None:
                kwargs["message_thread_id"] = None  # the topic was closed or deleted
                return await self._send_html(chunk, kwargs)
            raise

    async def _send_html(self, chunk: Chunk, kwargs: dict[str, Any]) -> Message:
        try:
            return await self._post(text=chunk.html, parse_mode=ParseMode.HTML, **kwargs)
        except BadRequest as exc:
            if not is_parse_error(exc):
                raise
            log.warning("Telegram rejected the HTML (%s); sending plain text", exc.message)
            return await self._post(text=chunk.plain, **kwargs)

    async def _post(self, **kwargs: Any) -> Message:
        """sendMessage; a connection that failed before the request went out, or a Bot API
        5xx, is retried for a few seconds (RetryAfter is the rate limiter's; a timeout is not
        retried: it may have been sent)."""
        for delay in (*CONNECT_RETRY_DELAYS, None):
            try:
                return await self.bot.send_message(**kwargs)
            except NetworkError as exc:
                message = str(exc).lower()
                if delay is None or isinstance(exc, BadRequest | TimedOut) or not (
                    "connect" in message or message.startswith(SERVER_ERRORS)
                ):
                    raise
                log.warning("Bot API unreachable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def draft(self, chat_id: int, draft_id: int, chunk: Chunk, *,
                    thread_id: int | None = None) -> None:
        """A private chat's draft (sendMessageDraft, Bot API 9.3+): a partial answer shown as
        it is written; a draft isn't a message, so no per-chat pacing."""
        try:
            await self.bot.send_message_draft(chat_id, draft_id, chunk.html,
                                              message_thread_id=thread_id,
                                              parse_mode=ParseMode.HTML)
        except BadRequest as exc:
            if not is_parse_error(exc):
                raise
            await self.bot.send_message_draft(chat_id, draft_id, chunk.plain,
                                              message_thread_id=thread_id)

    async def delete(self, chat_id: int, message_id: int) -> None:
        """Delete a message (a partial answer that got shorter); already gone is fine."""
        try:
            await self.bot.delete_message(chat_id, message_id)
        except BadRequest as exc:
            log.info("could not delete %s in %s: %s", message_id, chat_id, exc.message)

    async def edit(
        self, chat_id: int, message_id: int, chunk: Chunk,
        markup: InlineKeyboardMarkup | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {
            "chat_id": chat_id, "message_id": message_id, "reply_markup": markup,
            "link_preview_options": LinkPreviewOptions(is_disabled=True),
        }
        await self.pacer.turn(str(chat_id))
        try:
            await self.bot.edit_message_text(chunk.html, parse_mode=ParseMode.HTML, **kwargs)
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return
            if not is_parse_error(exc):
                raise
            await self.bot.edit_message_text(chunk.plain, **kwargs)
