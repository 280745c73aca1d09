"""The Telegram ingress: a python-telegram-bot v22 Application whose handlers convert updates
(inbound.py), call the engine service and render the replies (outbound.py); served by long
polling (`evobot telegram`) or by the `/telegram/webhook` route of `evobot serve`.

Feedback from 💬 takes two taps and a reply: a category keyboard (or Skip), then a ForceReply
prompt whose reply is the comment (see inbound.py for how the category travels).

Handler groups: -1 claims the update_id (a repeated update is handled once), 0 does the work
(messages, callback queries, reactions), 1 confirms the claim; the error handler releases it
so Telegram's redelivery is processed, and the webhook answers 500 to ask for that redelivery.
The claims live in Redis (adapters.common.dedup) so every web or polling process shares them.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, NamedTuple

from pydantic import ValidationError
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import (
    BotCommand,
    CallbackQuery,
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
from telegram.request import HTTPXRequest

from adapters.common.dedup import Dedup, MemoryDedup, RedisDedup
from adapters.common.outage import unavailable
from adapters.common.pacing import NoPacing
from adapters.telegram.client import (
    Pacer,
    ReplyMarkup,
    Sender,
    TelegramSettings,
    chat_pacer,
    rate_limiter,
)
from adapters.telegram.files import FileFetcher
from adapters.telegram.inbound import (
    PLATFORM,
    ActionCallback,
    BotIdentity,
    CategoryCallback,
    CommentCallback,
    RateCallback,
    command_from_message,
    comment_from_reply,
    feedback_from_reaction,
    objective_from_message,
    parse_callback,
    shared_files,
    tenant_of,
    topic_of,
    well_formed,
)
from adapters.telegram.outbound import (
    Chunk,
    category_chosen,
    category_keyboard,
    category_prompt,
    comment_prompt,
    document_keyboard,
    done_note,
    render_document,
    render_text,
)
from engine.commands import Command, listed, needs_admin
from engine.service import EvobotService
from engine.storage.outage import storage_unavailable
from engine.types import (
    FeedbackCategory,
    FeedbackSource,
    InboundCommand,
    InboundFeedback,
    InboundMessage,
)

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MESSAGE_REACTION]
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# An update is one message (text up to 4,096 UTF-16 units, a caption up to 1,024) with its
# entities, plus the message it replies to and a quote, each as large: about 24 KiB of escaped
# text and up to one ~80-byte entity per character, ~350 KiB a message at worst. 1 MiB fits
# an update; the Bot API never sends more.
MAX_BODY = 1 << 20
ACTION_DONE = {"rollback": "Rolled back", "apply": "Applied", "dismiss": "Dismissed"}
STALE_BUTTON = "This button is no longer active."
NOT_YOUR_BUTTONS = "These buttons are someone else's; tap 💬 under the answer to give yours."

Context = ContextTypes.DEFAULT_TYPE
AnyApplication = Application[Any, Any, Any, Any, Any, Any]


# --- the command menu -----------------------------------------------------------------------

_MENU_NAME = re.compile(r"^[a-z0-9_]{1,32}$")  # what setMyCommands accepts
_MENU_DESCRIPTION_MAX = 256


def _menu_description(command: Command) -> str:
    summary = command.summary[:1].upper() + command.summary[1:]
    text = f"{summary}: /{command.usage}" if command.args else summary
    return text[:_MENU_DESCRIPTION_MAX] or command.name


def bot_commands() -> list[BotCommand]:
    """The setMyCommands menu: the engine's listed commands, in their order."""
    return [BotCommand(c.name, _menu_description(c)) for c in listed()
            if _MENU_NAME.match(c.name)]


# --- the ingress --------------------------------------------------------------------------


class CallbackAnswer(NamedTuple):
    """What answerCallbackQuery shows: a toast, or an alert the user must dismiss."""

    text: str | None
    alert: bool = False


def build_application(settings: TelegramSettings, *, polling: bool) -> AnyApplication:
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
    else:
        builder = builder.get_updates_request(UpdatesRequest())
    return builder.application_class(CheckedApplication).build()


class UpdatesRequest(HTTPXRequest):
    """getUpdates, where an update PTB can't parse becomes a bare update (its id alone): PTB
    parses the whole batch at once, so one bad update would fail every poll from then on and
    stop the bot; this way the offset moves past it."""

    async def do_request(self, url: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(url, *args, **kwargs)
        if code != 200 or not url.endswith("/getUpdates"):
            return code, payload
        data = json.loads(payload)
        if isinstance(data.get("result"), list):
            data["result"] = [_parseable(raw) for raw in data["result"]]
        return code, json.dumps(data).encode()


def _parseable(raw: Any) -> Any:
    try:
        Update.de_json(raw, None)
        if _lone_surrogate(raw):
            raise ValueError("a lone surrogate")
        return raw
    except Exception as exc:  # whatever PTB raises on a shape it doesn't expect
        log.warning("update %s can't be parsed (%s); ignored", raw.get("update_id"), exc)
        return {"update_id": raw["update_id"]}


class CheckedApplication(Application[Any, Any, Any, Any, Any, Any]):
    """PTB's Application that drops an update whose fields don't have the Bot API's types
    before any handler (or PTB's own bookkeeping, which hashes the chat and user ids) reads
    it: acknowledged and ignored, webhook and polling alike, since a redelivery would fail
    the same way."""

    async def process_update(self, update: object) -> None:
        if isinstance(update, Update) and not well_formed(update):
            log.warning("update %s is malformed; ignored", update.update_id)
            return
        await super().process_update(update)


class TelegramIngress:
    """Holds the Application and its handlers (matching in inbound.py, rendering in
    outbound.py, the engine's work in the service)."""

    def __init__(
        self,
        service: EvobotService,
        settings: TelegramSettings,
        *,
        dedup: Dedup | None = None,
        pacer: Pacer | None = None,
        reaction_table: Mapping[str, int] | None = None,
        polling: bool = False,
    ) -> None:
        self.service = service
        self.settings = settings
        self.dedup: Dedup = dedup or MemoryDedup()
        self.reaction_table = reaction_table
        self.failed: set[int] = set()  # webhook mode: update ids whose handling failed
        self.unavailable: set[int] = set()  # … of those, failed because storage was down
        self._track_failures = not polling
        self.application = build_application(settings, polling=polling)
        self.sender = Sender(self.application.bot, pacer or NoPacing())
        self._me: BotIdentity | None = None
        self._add_handlers()

    @property
    def bot(self) -> Any:
        return self.application.bot

    @property
    def me(self) -> BotIdentity:
        if self._me is None:
            self._me = BotIdentity(id=self.bot.id, username=self.bot.username)
        return self._me

    def _add_handlers(self) -> None:
        app = self.application
        app.add_handler(TypeHandler(Update, self._claim), group=-1)
        app.add_handler(
            MessageHandler(filters.UpdateType.MESSAGE & (filters.TEXT | filters.Document.ALL
                                                         | filters.PHOTO), self._on_message),
            group=0
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
        """initialize() (getMe) and register the command menu; failing to register is logged
        (typed commands still work)."""
        await self.application.initialize()
        _ = self.me
        try:
            await self.bot.set_my_commands(bot_commands())
        except TelegramError:
            log.exception("setMyCommands failed; commands still work when typed")

    # --- dedup and errors ---------------------------------------------------------------

    async def _claim(self, update: Update, context: Context) -> None:
        if not await self.dedup.claim(str(update.update_id)):
            log.info("update %s was already handled", update.update_id)
            raise ApplicationHandlerStop

    async def _confirm(self, update: Update, context: Context) -> None:
        await self.dedup.confirm(str(update.update_id))

    async def _on_error(self, update: object, context: Context) -> None:
        if isinstance(context.error, ValidationError) and isinstance(update, Update):
            # a field of Telegram's with the wrong type (PTB doesn't check): redelivering
            # the same update fails the same way, so it is acknowledged and ignored
            log.warning("update %s is malformed; ignored", update.update_id,
                        exc_info=context.error)
            await self.dedup.confirm(str(update.update_id))
            raise ApplicationHandlerStop
        down = context.error is not None and storage_unavailable(context.error)
        if down:
            log.warning("storage unavailable: update left for redelivery (%s)",
                        type(context.error).__name__)
        else:
            log.error("handling update failed", exc_info=context.error)
        if isinstance(update, Update):
            if self._track_failures:
                self.failed.add(update.update_id)
                if down:
                    self.unavailable.add(update.update_id)
            await self.dedup.release(str(update.update_id))
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
            await self.service.handle_message(await self._with_files(message, objective))

    async def _with_files(self, message: Message, objective: InboundMessage) -> InboundMessage:
        """The message's document or photo, downloaded before the update is acknowledged
        (adapters/telegram/files.py): if this process dies meanwhile, Telegram sends the
        update again."""
        shared = shared_files(message)
        if not shared:
            return objective
        attachments = await FileFetcher(self.bot).fetch_all(shared)
        return objective.model_copy(update={"attachments": attachments})

    async def _command(self, message: Message, command: InboundCommand) -> None:
        command = await self._with_admin_rights(message.chat, command)
        shared = shared_files(message)
        if shared:  # a file sent with the command: `/import` as an agent file's caption
            attachments = await FileFetcher(self.bot).fetch_all(shared)
            command = command.model_copy(update={"attachments": attachments})
        document = (await self.service.handle_command(command)).document
        await self.sender.send(
            message.chat.id, render_document(document), thread_id=topic_of(message),
            reply_to=message.message_id, markup=document_keyboard(document.buttons),
        )

    async def _comment(self, message: Message, comment: InboundFeedback) -> None:
        """✍ on the comment once recorded; a text reply when that fails or it wasn't."""
        comment = await self._with_admin_standing(message.chat, comment)
        result = await self.service.handle_feedback(comment)
        if result.recorded and await self._react(message, ReactionEmoji.WRITING_HAND):
            return
        await self.sender.send(
            message.chat.id, render_text(result.message), thread_id=topic_of(message),
            reply_to=message.message_id,
        )

    async def _react(self, message: Message, emoji: ReactionEmoji) -> bool:
        try:
            await self.bot.set_message_reaction(message.chat.id, message.message_id, emoji)
        except TelegramError:
            log.info("could not react to message %s in %s", message.message_id, message.chat.id)
            return False
        return True

    # --- admin rights -----------------------------------------------------------------------

    async def _with_admin_rights(self, chat: Chat, command: InboundCommand) -> InboundCommand:
        """The command with is_admin settled by Telegram, when the engine's registry says the
        call needs it (and the caller isn't known to be an admin already)."""
        if command.is_admin or not needs_admin(command):
            return command
        is_admin = await self.is_admin(chat, command.user_id)
        return command.model_copy(update={"is_admin": is_admin})

    async def _with_admin_standing(self, chat: Chat, feedback: InboundFeedback
                                   ) -> InboundFeedback:
        """The comment with from_admin settled by Telegram (unless already known)."""
        if feedback.from_admin:
            return feedback
        is_admin = await self.is_admin(chat, feedback.user_id)
        return feedback.model_copy(update={"from_admin": is_admin})

    async def is_admin(self, chat: Chat, user_id: str) -> bool:
        """Private chats belong to their user; in groups ask getChatMember."""
        if chat.type == ChatType.PRIVATE:
            return True
        if not user_id.isdigit():
            return False
        try:
            member = await self.bot.get_chat_member(chat.id, int(user_id))
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
        try:
            answer = await self._callback(query)
        except Exception:
            await _answer(query, CallbackAnswer("Something went wrong; please try again.", True))
            raise
        await _answer(query, answer)

    async def _callback(self, query: CallbackQuery) -> CallbackAnswer:
        parsed = parse_callback(query.data)
        if parsed is None or query.message is None:
            return CallbackAnswer(STALE_BUTTON)
        if isinstance(parsed, RateCallback):
            return await self._rate(query, parsed)
        if isinstance(parsed, CommentCallback):
            return await self._ask_category(query, parsed)
        if isinstance(parsed, CategoryCallback):
            return await self._categorize(query, parsed)
        return await self._act(query, parsed)

    async def _rate(self, query: CallbackQuery, rate: RateCallback) -> CallbackAnswer:
        assert query.message is not None
        result = await self.service.handle_feedback(InboundFeedback(
            tenant_id=tenant_of(query.message.chat.id), user_id=str(query.from_user.id),
            source=FeedbackSource.BUTTON, rating=rate.rating, execution_id=rate.execution_id,
        ))
        return CallbackAnswer(result.message, alert=not result.recorded)

    async def _ask_category(self, query: CallbackQuery, ask: CommentCallback) -> CallbackAnswer:
        """💬: a keyboard of feedback categories (and Skip) for the user who tapped it."""
        user = query.from_user
        await self._reply_to_pressed(
            query, category_prompt(user.id, user.first_name),
            category_keyboard(ask.execution_id, user.id),
        )
        return CallbackAnswer("What was the problem? Pick one, or Skip.")

    async def _categorize(self, query: CallbackQuery, choice: CategoryCallback
                          ) -> CallbackAnswer:
        """A category is recorded at once (it counts even if no comment follows); then, as for
        Skip, the ForceReply prompt, which names the category for the comment to carry."""
        assert query.message is not None
        user = query.from_user
        if user.id != choice.user_id:
            return CallbackAnswer(NOT_YOUR_BUTTONS, alert=True)
        if choice.category is not None:
            result = await self.service.handle_feedback(InboundFeedback(
                tenant_id=tenant_of(query.message.chat.id), user_id=str(user.id),
                source=FeedbackSource.BUTTON, category=choice.category,
                execution_id=choice.execution_id,
            ))
            if not result.recorded:
                return CallbackAnswer(result.message, alert=True)
        await self._settle_category(query, choice.category)
        await self._ask_comment(query, choice.execution_id, choice.category)
        noted = f"{choice.category.label} — noted. " if choice.category else ""
        return CallbackAnswer(f"{noted}Reply to my message with your comment.")

    async def _settle_category(self, query: CallbackQuery,
                               category: FeedbackCategory | None) -> None:
        """The category message says what was chosen and loses its buttons (best effort)."""
        message = _accessible(query)
        if message is None:
            return
        user = query.from_user
        try:
            await self.sender.edit(message.chat.id, message.message_id,
                                   category_chosen(user.id, user.first_name, category), None)
        except TelegramError:
            log.info("could not update the category message", exc_info=True)

    async def _ask_comment(self, query: CallbackQuery, execution_id: int,
                           category: FeedbackCategory | None) -> None:
        """A ForceReply prompt mentioning the user; their reply is the comment."""
        user = query.from_user
        await self._reply_to_pressed(
            query, comment_prompt(execution_id, user.id, user.first_name, category),
            ForceReply(selective=True, input_field_placeholder="Your comment"),
        )

    async def _reply_to_pressed(self, query: CallbackQuery, chunk: Chunk,
                                markup: ReplyMarkup) -> None:
        """Send one message replying to the pressed one, in its forum topic if any."""
        assert query.message is not None
        message = _accessible(query)
        await self.sender.send_one(
            query.message.chat.id, chunk, thread_id=topic_of(message) if message else None,
            reply_to=query.message.message_id, markup=markup,
        )

    async def _act(self, query: CallbackQuery, action: ActionCallback) -> CallbackAnswer:
        """A document's button: the engine command it names, by whoever pressed it."""
        assert query.message is not None
        chat, user = query.message.chat, query.from_user
        command = await self._with_admin_rights(chat, InboundCommand(
            tenant_id=tenant_of(chat.id), user_id=str(user.id), name=action.action,
            args=[action.value] if action.value else [], channel_id=str(chat.id),
        ))
        reply = await self.service.handle_command(command)
        message = _accessible(query)
        if reply.ok and action.action in ACTION_DONE and message is not None:
            await self._mark_done(message, f"{ACTION_DONE[action.action]} by {user.full_name}")
        return CallbackAnswer(reply.document.summary[:200], alert=not reply.ok)

    async def _mark_done(self, message: Message, note: str) -> None:
        """Drop the buttons of an announcement once acted on, saying who did what."""
        chunk = done_note(message.text_html if message.text else "", message.text or "", note)
        if chunk is None:
            return
        try:
            await self.sender.edit(message.chat.id, message.message_id, chunk, None)
        except TelegramError:
            log.info("could not update the announcement", exc_info=True)


def _accessible(query: CallbackQuery) -> Message | None:
    """The pressed message, unless Telegram sent it as "inaccessible" (too old): ratings still
    work then, edits and topic replies don't."""
    return query.message if isinstance(query.message, Message) else None


async def _answer(query: CallbackQuery, answer: CallbackAnswer) -> None:
    try:
        await query.answer(text=answer.text[:200] if answer.text else None,
                           show_alert=answer.alert)
    except TelegramError:
        log.warning("answerCallbackQuery failed", exc_info=True)


# --- webhook (served by `evobot serve`) ---------------------------------------------------


ServiceSource = EvobotService | Callable[[], EvobotService]


class _Rejected(Exception):
    """A webhook request answered without handling it."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _refusal(status: int, error: str) -> _Rejected:
    return _Rejected(JSONResponse({"ok": False, "error": error}, status_code=status))


async def _read_update(request: Request) -> dict[str, Any]:
    """The request's JSON when it looks like an update (400 otherwise)."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise _Rejected(Response("too large", status_code=413))
    body = await request.body()
    try:
        data = json.loads(body)
    except ValueError:
        raise _refusal(400, "invalid JSON") from None
    if not isinstance(data, dict) or type(data.get("update_id")) is not int:
        raise _refusal(400, "not an update")
    if _SURROGATE_ESCAPE.search(body) and _lone_surrogate(data):
        log.warning("update %s carries a lone surrogate; ignored", data["update_id"])
        raise _Rejected(Response(status_code=200))  # redelivered, it would fail again
    return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _lone_surrogate(data: Any) -> bool:
    """A string holds a lone surrogate: JSON can escape one, UTF-8 (a Bot API request, a
    Redis key) can't carry it."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class TelegramWebhook:
    """`POST /telegram/webhook`: checks the secret header, parses the update (400 if it can't),
    runs it through the Application and answers 200 once the engine has recorded it (500 when
    handling failed, so Telegram delivers it again)."""

    def __init__(
        self,
        settings: TelegramSettings,
        service: ServiceSource,
        *,
        dedup: Dedup | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.settings = settings
        self._service = service
        self._dedup = dedup
        self._pacer = pacer
        self._ingress: TelegramIngress | None = None
        self._lock = asyncio.Lock()
        # the web process's mount protocol: `routes` plus startup()/shutdown()
        self.routes: list[BaseRoute] = [self.route()]
        # checked by the web process before the body is read (adapters/common/body_limit.py)
        self.body_limits = {WEBHOOK_PATH: MAX_BODY}
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

    async def start(self) -> TelegramIngress:
        """Build and start the ingress once; raises when the Bot API can't be reached."""
        if self._ingress is not None:
            return self._ingress
        async with self._lock:
            if self._ingress is None:
                self._ingress = await self._boot()
            return self._ingress

    async def _boot(self) -> TelegramIngress:
        """initialize (getMe), the command menu and (when a public URL is configured) the
        webhook registration."""
        service = self._service if isinstance(self._service, EvobotService) else (
            self._service()
        )
        ingress = TelegramIngress(service, self.settings, dedup=self._dedup, pacer=self._pacer)
        await ingress.startup()
        if self.settings.webhook_url:
            await self._register(ingress)
        return ingress

    async def _register(self, ingress: TelegramIngress) -> None:
        try:
            await ingress.bot.set_webhook(
                self.settings.webhook_url, secret_token=self.settings.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        except TelegramError:
            log.exception("setWebhook failed")

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
        try:
            if not self._authorized(request):
                raise _Rejected(Response("forbidden", status_code=403))
            data = await _read_update(request)
            ingress = await self._started()
            update = _parse_update(data, ingress)
        except _Rejected as rejected:
            return rejected.response
        return await _process(ingress, update)

    async def _started(self) -> TelegramIngress:
        try:
            return await self.start()
        except Exception:
            log.exception("Telegram startup failed; answering 503 so Telegram retries")
            raise _refusal(503, "starting") from None

    def route(self, path: str = WEBHOOK_PATH) -> Route:
        return Route(path, self.endpoint, methods=["POST"], name="telegram_webhook")


def _parse_update(data: dict[str, Any], ingress: TelegramIngress) -> Update:
    try:
        update = Update.de_json(data, ingress.bot)
    except Exception as exc:
        log.warning("malformed update %s: %s", data.get("update_id"), exc)
        raise _refusal(400, "malformed update") from None
    if update is None:
        raise _refusal(400, "malformed update")
    return update


async def _process(ingress: TelegramIngress, update: Update) -> Response:
    """200 once handled; 500 when handling failed, so Telegram delivers it again."""
    started = time.perf_counter()
    await ingress.application.process_update(update)
    if update.update_id in ingress.unavailable:  # Telegram delivers it again later
        ingress.failed.discard(update.update_id)
        ingress.unavailable.discard(update.update_id)
        return unavailable()
    if update.update_id in ingress.failed:
        ingress.failed.discard(update.update_id)
        return JSONResponse({"ok": False, "error": "handling failed"}, status_code=500)
    log.debug("update %s handled in %.1f ms", update.update_id,
              (time.perf_counter() - started) * 1000)
    return Response(status_code=200)


def shared_dedup(redis: Redis | None) -> Dedup | None:
    """Update-id claims shared by every process through Redis (None: each process its own)."""
    return RedisDedup(redis, namespace=PLATFORM) if redis is not None else None


def webhook_mount(config: Any, service: ServiceSource, redis: Redis | None = None
                  ) -> TelegramWebhook:
    """The web process's Telegram mount from a bot.config.Config-like object: the route,
    startup() (getMe, setMyCommands, setWebhook when TELEGRAM_WEBHOOK_URL is set) and
    shutdown(). `redis` (a redis.asyncio client) shares update dedup and per-chat pacing with
    every other process; without it each process has its own dedup and no pacing."""
    settings = TelegramSettings.from_config(config)
    if settings is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    return TelegramWebhook(settings, service, dedup=shared_dedup(redis),
                           pacer=chat_pacer(settings, redis))


# --- long polling (`evobot telegram`) ------------------------------------------------------


async def run_polling(
    settings: TelegramSettings,
    service: EvobotService,
    *,
    stop: asyncio.Event,
    redis: Redis | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """getUpdates long polling until `stop` is set; deleteWebhook happens at bootstrap.
    `redis` shares update dedup and per-chat pacing with the other processes."""
    ingress = TelegramIngress(service, settings, dedup=shared_dedup(redis),
                              pacer=chat_pacer(settings, redis), polling=True)
    await ingress.startup()
    try:
        await _start_polling(ingress)
        log.info("polling Telegram as @%s", ingress.me.username)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await _stop_polling(ingress.application)


async def _start_polling(ingress: TelegramIngress) -> None:
    app = ingress.application
    assert app.updater is not None
    await app.updater.start_polling(
        timeout=timedelta(seconds=ingress.settings.poll_timeout_s),
        allowed_updates=ALLOWED_UPDATES, bootstrap_retries=5, drop_pending_updates=False,
    )
    await app.start()


async def _stop_polling(app: AnyApplication) -> None:
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()
