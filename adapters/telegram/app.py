"""The Telegram ingress: a python-telegram-bot v22 Application whose handlers convert updates
(convert.py) and call the engine service; served by long polling (`evobot telegram`) or by
the `/telegram/webhook` route of `evobot serve`.

Handler groups: -1 claims the update_id (a repeated update is handled once), 0 does the work
(messages, callback queries, reactions), 1 confirms the claim; the error handler releases it
so Telegram's redelivery is processed, and the webhook answers 500 to ask for that redelivery.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import (
    BotCommand,
    Chat,
    ForceReply,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ReactionEmoji
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    MessageReactionHandler,
    TypeHandler,
    filters,
)

from adapters.telegram.client import ChatPacer, Sender, TelegramSettings, rate_limiter
from adapters.telegram.convert import (
    ActionCallback,
    BotIdentity,
    Chunk,
    CommentCallback,
    RateCallback,
    command_from_message,
    comment_from_reply,
    comment_prompt,
    document_keyboard,
    escape,
    feedback_from_reaction,
    objective_from_message,
    parse_callback,
    render_document,
    render_text,
    tenant_of,
    thread_of,
    utf16_len,
)
from engine.commands import needs_admin
from engine.service import EvobotService
from engine.types import FeedbackSource, InboundCommand, InboundFeedback

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MESSAGE_REACTION]
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20

COMMANDS = [
    BotCommand("status", "Version, ratings per version, tools, evolution state"),
    BotCommand("history", "Recent versions and what changed them"),
    BotCommand("diff", "Prompt diff between versions: /diff [a] [b]"),
    BotCommand("rollback", "Make an earlier version active (admins)"),
    BotCommand("tools", "The agent's tools and their stats"),
    BotCommand("pause", "Stop self-evolution (admins)"),
    BotCommand("resume", "Restart self-evolution (admins)"),
    BotCommand("privacy", "isolated | federated | collective (admins)"),
    BotCommand("help", "What I can do"),
]
ACTION_DONE = {"rollback": "Rolled back", "apply": "Applied", "dismiss": "Dismissed"}


# --- once-only update handling --------------------------------------------------------


class UpdateDedup(Protocol):
    """Claims an update_id before handling it; confirmed after, released on failure."""

    async def claim(self, update_id: int) -> bool: ...

    async def confirm(self, update_id: int) -> None: ...

    async def release(self, update_id: int) -> None: ...


class MemoryDedup:
    """One process's memory of recent update ids (bounded)."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._seen: OrderedDict[int, None] = OrderedDict()

    async def claim(self, update_id: int) -> bool:
        if update_id in self._seen:
            return False
        self._seen[update_id] = None
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True

    async def confirm(self, update_id: int) -> None:
        return None

    async def release(self, update_id: int) -> None:
        self._seen.pop(update_id, None)


class RedisDedup:
    """Shared by every web/polling process: SET NX with a short claim TTL (a process that dies
    mid-update lets the redelivery through), extended once handled."""

    def __init__(
        self, redis: Any, *, namespace: str = "telegram", claim_ttl_s: int = 120,
        keep_ttl_s: int = 86_400,
    ) -> None:
        self.redis = redis  # a redis.asyncio.Redis
        self.namespace = namespace
        self.claim_ttl_s = claim_ttl_s
        self.keep_ttl_s = keep_ttl_s

    def _key(self, update_id: int) -> str:
        return f"evobot:{self.namespace}:update:{update_id}"

    async def claim(self, update_id: int) -> bool:
        return bool(await self.redis.set(self._key(update_id), b"1", nx=True,
                                         ex=self.claim_ttl_s))

    async def confirm(self, update_id: int) -> None:
        await self.redis.expire(self._key(update_id), self.keep_ttl_s)

    async def release(self, update_id: int) -> None:
        await self.redis.delete(self._key(update_id))


# --- the ingress --------------------------------------------------------------------------


Context = ContextTypes.DEFAULT_TYPE


class TelegramIngress:
    """Builds the Application and holds its handlers (match in convert.py, run here)."""

    def __init__(
        self,
        service: EvobotService,
        settings: TelegramSettings,
        *,
        dedup: UpdateDedup | None = None,
        reaction_table: Mapping[str, int] | None = None,
        polling: bool = False,
    ) -> None:
        self.service = service
        self.settings = settings
        self.dedup: UpdateDedup = dedup or MemoryDedup()
        self.reaction_table = reaction_table
        self.failed: set[int] = set()  # webhook mode: update ids whose handling failed
        self._track_failures = not polling
        builder = (
            ApplicationBuilder()
            .token(settings.token)
            .base_url(settings.base_url)
            .base_file_url(settings.base_file_url)
            .rate_limiter(rate_limiter(settings))
            .connection_pool_size(64)
        )
        if not polling:
            builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.sender = Sender(self.application.bot, ChatPacer(settings.chat_interval_s))
        self._me: BotIdentity | None = None
        self._add_handlers()

    @property
    def me(self) -> BotIdentity:
        if self._me is None:
            bot = self.application.bot
            self._me = BotIdentity(id=bot.id, username=bot.username)
        return self._me

    def _add_handlers(self) -> None:
        app = self.application
        app.add_handler(TypeHandler(Update, self._claim), group=-1)
        app.add_handler(
            MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, self._on_message), group=0
        )
        app.add_handler(CallbackQueryHandler(self._on_callback), group=0)
        app.add_handler(
            MessageReactionHandler(
                self._on_reaction,
                message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_UPDATED,
            ),
            group=0,
        )
        app.add_handler(TypeHandler(Update, self._confirm), group=1)
        app.add_error_handler(self._on_error)

    async def startup(self) -> None:
        """initialize() (getMe) and register the commands; failures to register are logged."""
        await self.application.initialize()
        _ = self.me
        try:
            await self.application.bot.set_my_commands(COMMANDS)
        except TelegramError:
            log.exception("setMyCommands failed; commands still work when typed")

    # --- dedup and errors ---------------------------------------------------------------

    async def _claim(self, update: Update, context: Context) -> None:
        if not await self.dedup.claim(update.update_id):
            log.info("update %s was already handled", update.update_id)
            raise ApplicationHandlerStop

    async def _confirm(self, update: Update, context: Context) -> None:
        await self.dedup.confirm(update.update_id)

    async def _on_error(self, update: object, context: Context) -> None:
        log.error("handling update failed", exc_info=context.error)
        if isinstance(update, Update):
            if self._track_failures:
                self.failed.add(update.update_id)
            try:
                await self.dedup.release(update.update_id)
            except Exception:
                log.exception("could not release update %s", update.update_id)
        raise ApplicationHandlerStop

    # --- messages -----------------------------------------------------------------------------

    async def _on_message(self, update: Update, context: Context) -> None:
        message = update.message
        if message is None:
            return
        command = command_from_message(message, self.me)
        if command is not None:
            await self._command(message, command)
            return
        comment = comment_from_reply(message, self.me)
        if comment is not None:
            await self._comment(message, comment)
            return
        objective = objective_from_message(message, self.me)
        if objective is not None:
            await self.service.handle_message(objective)

    async def _command(self, message: Message, command: InboundCommand) -> None:
        if needs_admin(command) and not command.is_admin:
            command = command.model_copy(
                update={"is_admin": await self.is_admin(message.chat, command.user_id)}
            )
        reply = await self.service.handle_command(command)
        document = reply.document
        await self.sender.send(
            message.chat.id, render_document(document), thread_id=_topic(message),
            reply_to=message.message_id, markup=document_keyboard(document.buttons),
        )

    async def _comment(self, message: Message, comment: InboundFeedback) -> None:
        result = await self.service.handle_feedback(comment)
        if result.recorded:
            try:
                await self.application.bot.set_message_reaction(
                    message.chat.id, message.message_id, ReactionEmoji.WRITING_HAND
                )
                return
            except TelegramError:
                log.info("could not react to the comment; acknowledging in text")
        await self.sender.send(
            message.chat.id, render_text(result.message), thread_id=_topic(message),
            reply_to=message.message_id,
        )

    async def is_admin(self, chat: Chat, user_id: str) -> bool:
        """Private chats belong to their user; in groups ask getChatMember."""
        if chat.type == ChatType.PRIVATE:
            return True
        if not user_id.isdigit():
            return False
        try:
            member = await self.application.bot.get_chat_member(chat.id, int(user_id))
        except TelegramError:
            log.warning("getChatMember failed for %s in %s", user_id, chat.id, exc_info=True)
            return False
        return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)

    # --- reactions ------------------------------------------------------------------------

    async def _on_reaction(self, update: Update, context: Context) -> None:
        reaction = update.message_reaction
        if reaction is None:
            return
        feedback = feedback_from_reaction(reaction, self.reaction_table)
        if feedback is not None:
            result = await self.service.handle_feedback(feedback)
            log.debug("reaction in %s: %s", reaction.chat.id, result.message)

    # --- inline buttons --------------------------------------------------------------------

    async def _on_callback(self, update: Update, context: Context) -> None:
        """Every callback query is answered, whatever happens while handling it."""
        query = update.callback_query
        if query is None:
            return
        text: str | None = None
        alert = False
        try:
            text, alert = await self._callback(update)
        except Exception:
            await _answer(query, "Something went wrong; please try again.", True)
            raise
        await _answer(query, text, alert)

    async def _callback(self, update: Update) -> tuple[str | None, bool]:
        query = update.callback_query
        assert query is not None
        parsed = parse_callback(query.data)
        if parsed is None or query.message is None:
            return "This button is no longer active.", False
        chat, user = query.message.chat, query.from_user
        # an old message can be "inaccessible": ratings still work, edits and replies don't
        message = query.message if isinstance(query.message, Message) else None
        tenant_id = tenant_of(chat.id)
        if isinstance(parsed, RateCallback):
            result = await self.service.handle_feedback(
                InboundFeedback(tenant_id=tenant_id, user_id=str(user.id),
                                source=FeedbackSource.BUTTON, rating=parsed.rating,
                                execution_id=parsed.execution_id)
            )
            return result.message, not result.recorded
        if isinstance(parsed, CommentCallback):
            prompt = comment_prompt(parsed.execution_id, user.id, user.first_name)
            await self.sender.send_one(
                chat.id, prompt, thread_id=_topic(message) if message else None,
                reply_to=query.message.message_id,
                markup=ForceReply(selective=True, input_field_placeholder="Your comment"),
            )
            return "Reply to my message with your comment.", False
        assert isinstance(parsed, ActionCallback)
        is_admin = await self.is_admin(chat, str(user.id))
        reply = await self.service.handle_command(
            InboundCommand(tenant_id=tenant_id, user_id=str(user.id), name=parsed.action,
                           args=[parsed.value] if parsed.value else [],
                           channel_id=str(chat.id), is_admin=is_admin)
        )
        if reply.ok and parsed.action in ACTION_DONE and message is not None:
            await self._mark_done(message, f"{ACTION_DONE[parsed.action]} by {user.full_name}")
        return reply.document.summary[:200], not reply.ok

    async def _mark_done(self, message: Message, note: str) -> None:
        """Drop the buttons of an announcement once acted on, saying who did what."""
        html_text = message.text_html if message.text else ""
        chunk = Chunk(html=f"{html_text}\n\n<i>✔ {escape(note)}</i>",
                      plain=f"{message.text or ''}\n\n✔ {note}")
        if utf16_len(chunk.html) > 4096:
            return
        try:
            await self.sender.edit(message.chat.id, message.message_id, chunk, None)
        except TelegramError:
            log.info("could not update the announcement", exc_info=True)


def _topic(message: Message) -> int | None:
    thread = thread_of(message)
    return int(thread) if thread else None


async def _answer(query: Any, text: str | None, alert: bool) -> None:
    try:
        await query.answer(text=text[:200] if text else None, show_alert=alert)
    except TelegramError:
        log.warning("answerCallbackQuery failed", exc_info=True)


# --- webhook (served by `evobot serve`) ---------------------------------------------------


ServiceSource = EvobotService | Callable[[], EvobotService]


class TelegramWebhook:
    """`POST /telegram/webhook`: checks the secret header, parses the update (400 if it can't),
    runs it through the Application and answers 200 once the engine has recorded it (500 when
    handling failed, so Telegram delivers it again)."""

    def __init__(
        self,
        settings: TelegramSettings,
        service: ServiceSource,
        *,
        dedup: UpdateDedup | Callable[[], UpdateDedup] | None = None,
    ) -> None:
        self.settings = settings
        self._service = service
        self._dedup = dedup
        self._ingress: TelegramIngress | None = None
        self._lock: asyncio.Lock | None = None
        # the web process's mount protocol: `routes` plus startup()/shutdown()
        self.routes: list[BaseRoute] = [self.route()]
        if not settings.webhook_secret:
            log.error("TELEGRAM_WEBHOOK_SECRET is not set: %s refuses every request",
                      WEBHOOK_PATH)

    @property
    def ingress(self) -> TelegramIngress | None:
        return self._ingress

    async def startup(self) -> None:
        """Called by the web process's lifespan: a Bot API outage at boot must not keep the
        web process (Slack, health) down, so a failure is logged and retried on the first
        update."""
        try:
            await self.start()
        except Exception:
            log.exception("Telegram startup failed; retrying on the first update")

    async def start(self) -> None:
        """Build and initialize the Application, register commands and (when a public URL is
        configured) the webhook. Once; raises when the Bot API can't be reached."""
        if self._ingress is not None:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._ingress is not None:
                return
            service = self._service if isinstance(self._service, EvobotService) else (
                self._service()
            )
            dedup = self._dedup() if callable(self._dedup) else self._dedup
            ingress = TelegramIngress(service, self.settings, dedup=dedup)
            await ingress.startup()
            if self.settings.webhook_url:
                try:
                    await ingress.application.bot.set_webhook(
                        self.settings.webhook_url, secret_token=self.settings.webhook_secret,
                        allowed_updates=ALLOWED_UPDATES,
                    )
                except TelegramError:
                    log.exception("setWebhook failed")
            self._ingress = ingress

    async def shutdown(self) -> None:
        if self._ingress is not None:
            await self._ingress.application.shutdown()
            self._ingress = None

    def _authorized(self, request: Request) -> bool:
        secret = self.settings.webhook_secret
        given = request.headers.get(SECRET_HEADER)
        if not secret or given is None:
            return False
        return hmac.compare_digest(given.encode(), secret.encode())

    async def endpoint(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response("forbidden", status_code=403)
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return Response("too large", status_code=413)
        try:
            data = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"ok": False, "error": "invalid JSON"}, status_code=400)
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            return JSONResponse({"ok": False, "error": "not an update"}, status_code=400)
        try:
            await self.start()
        except Exception:
            log.exception("Telegram startup failed; answering 503 so Telegram retries")
            return JSONResponse({"ok": False, "error": "starting"}, status_code=503)
        ingress = self._ingress
        assert ingress is not None
        try:
            update = Update.de_json(data, ingress.application.bot)
        except Exception as exc:
            log.warning("malformed update %s: %s", data.get("update_id"), exc)
            return JSONResponse({"ok": False, "error": "malformed update"}, status_code=400)
        started = time.perf_counter()
        await ingress.application.process_update(update)
        if update.update_id in ingress.failed:
            ingress.failed.discard(update.update_id)
            return JSONResponse({"ok": False, "error": "handling failed"}, status_code=500)
        log.debug("update %s handled in %.1f ms", update.update_id,
                  (time.perf_counter() - started) * 1000)
        return Response(status_code=200)

    def route(self, path: str = WEBHOOK_PATH) -> Route:
        return Route(path, self.endpoint, methods=["POST"], name="telegram_webhook")


def webhook_mount(config: Any, service: ServiceSource, redis: Any = None) -> TelegramWebhook:
    """The web process's Telegram mount from a bot.config.Config-like object: the route,
    startup() (getMe, setMyCommands, setWebhook when TELEGRAM_WEBHOOK_URL is set) and
    shutdown(). `redis` (a redis.asyncio client) makes update dedup shared by all web
    processes; without it each process remembers its own."""
    settings = TelegramSettings.from_config(config)
    if settings is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    return TelegramWebhook(settings, service,
                           dedup=RedisDedup(redis) if redis is not None else None)


# --- long polling (`evobot telegram`) ------------------------------------------------------


async def run_polling(
    settings: TelegramSettings,
    service: EvobotService,
    *,
    stop: asyncio.Event,
    dedup: UpdateDedup | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """getUpdates long polling until `stop` is set; deleteWebhook happens at bootstrap."""
    ingress = TelegramIngress(service, settings, dedup=dedup, polling=True)
    app = ingress.application
    await ingress.startup()
    try:
        assert app.updater is not None
        await app.updater.start_polling(
            timeout=timedelta(seconds=settings.poll_timeout_s), allowed_updates=ALLOWED_UPDATES,
            bootstrap_retries=5, drop_pending_updates=False,
        )
        await app.start()
        log.info("polling Telegram as @%s", ingress.me.username)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
