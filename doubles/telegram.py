"""A Bot API double: a real HTTP server (aiohttp) under `http://127.0.0.1:<port>/bot<token>/…`
that the bot reaches through TELEGRAM_API_URL, exactly as it would a local Bot API server;
and builders of the updates Telegram would send it (PTB objects serialized with `to_dict()`).

It records every request, keeps the messages it "sent", long-polls getUpdates, answers
getChatMember from a table, validates HTML like Telegram does (unknown or unbalanced tags and
bare <, >, & → 400 "can't parse entities"; over 4,096 characters → 400 "message is too long"),
and can be scripted to fail: 429 with retry_after, or any 400.

What a user sees is kept in `timeline` (every send, edit, delete and draft, in order), so
tests can tell partial text was visible before an answer was complete. Drafts
(sendMessageDraft) are private chats' only; `drafts_available = False` answers them the way
a Bot API without the method does (404 Not Found).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from telegram import (
    CallbackQuery,
    Chat,
    ChatMemberAdministrator,
    ChatMemberMember,
    ChatMemberOwner,
    ForumTopicCreated,
    Message,
    MessageEntity,
    MessageReactionUpdated,
    ReactionTypeCustomEmoji,
    ReactionTypeEmoji,
    ReactionTypePaid,
    Update,
    User,
)

T = TypeVar("T")

TOKEN = "123456:TEST-token"
BOT_ID = 123456
BOT_USERNAME = "evobot_test_bot"
TEXT_KEYS = {"text", "caption", "callback_query_id", "url", "secret_token", "parse_mode",
             "action", "emoji", "description", "short_description"}
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
                "tg-spoiler", "a", "tg-emoji", "code", "pre", "blockquote"}
_TOKEN_RE = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>|&(#\d+|#x[0-9a-fA-F]+|lt|gt|amp|quot);"
)


class ParseError(ValueError):
    pass


def telegram_html(text: str) -> str:
    """Parse Telegram-flavoured HTML to its plain text, or raise ParseError as Telegram would."""
    out: list[str] = []
    stack: list[str] = []
    position = 0
    for match in _TOKEN_RE.finditer(text):
        literal = text[position : match.start()]
        for bad in "<>&":
            if bad in literal:
                raise ParseError(f"can't parse entities: unexpected {bad!r} at byte offset "
                                 f"{position + literal.index(bad)}")
        out.append(literal)
        position = match.end()
        if match.group(4) is not None:
            out.append(html.unescape(match.group(0)))
            continue
        closing, tag = match.group(1) == "/", match.group(2).lower()
        if tag not in ALLOWED_TAGS:
            raise ParseError(f"can't parse entities: unsupported start tag \"{tag}\"")
        if closing:
            if not stack or stack[-1] != tag:
                raise ParseError(f"can't parse entities: can't find end tag corresponding to "
                                 f"start tag \"{stack[-1] if stack else tag}\"")
            stack.pop()
        else:
            stack.append(tag)
    rest = text[position:]
    for bad in "<>&":
        if bad in rest:
            raise ParseError(f"can't parse entities: unexpected {bad!r}")
    if stack:
        raise ParseError(f"can't parse entities: can't find end tag corresponding to start "
                         f"tag \"{stack[-1]}\"")
    out.append(rest)
    return "".join(out)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200
    at: float = field(default_factory=time.monotonic)


@dataclass
class Seen:
    """What a user saw at one moment: a message (by id) or a chat's draft (message_id None)."""

    chat_id: int
    message_id: int | None
    text: str  # as shown (entities parsed)
    html: str | None
    deleted: bool = False
    at: float = field(default_factory=time.monotonic)


@dataclass
class StoredFile:
    """A file users sent (getFile serves its path) or the bot sent (sendPhoto/Document)."""

    file_id: str
    name: str
    data: bytes = b""
    size: int | None = None  # what getFile and the update declare (may lie)
    stream_bytes: int = 0  # > 0: the download serves that many bytes, chunked


@dataclass
class Failure:
    method: str
    status: int
    description: str
    retry_after: int | None
    times: int
    when: Callable[[dict[str, Any]], bool] | None = None


class BotApiDouble:
    def __init__(self, token: str = TOKEN, bot_id: int = BOT_ID,
                 username: str = BOT_USERNAME) -> None:
        self.token = token
        self.me = User(id=bot_id, is_bot=True, first_name="evobot", username=username,
                       can_join_groups=True, can_read_all_group_messages=False,
                       supports_inline_queries=False)
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}  # message_id → what the bot sent
        self.members: dict[tuple[int, int], str] = {}  # (chat, user) → status
        self.chat_types: dict[int, str] = {}
        self.failures: list[Failure] = []
        self.webhook: dict[str, Any] = {}
        self.timeline: list[Seen] = []
        self.drafts: dict[int, Seen] = {}  # chat id → the draft shown now
        self.drafts_available = True
        self._updates: list[dict[str, Any]] = []
        self.files: dict[str, StoredFile] = {}  # by file id: users' and the bot's
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(10_000)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self) -> BotApiDouble:
        app = web.Application(client_max_size=8 << 20)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- scripting ---------------------------------------------------------------------------

    def fail(self, method: str, *, status: int = 400, description: str = "Bad Request",
             retry_after: int | None = None, times: int = 1,
             when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.failures.append(Failure(method, status, description, retry_after, times, when))

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        self.fail(method, status=429, description=f"Too Many Requests: retry after {retry_after}",
                  retry_after=retry_after, times=times)

    def reject_entities(self, method: str = "sendMessage", times: int = 1) -> None:
        self.fail(method, description="Bad Request: can't parse entities: Can't find end tag "
                  "corresponding to start tag \"b\"", times=times,
                  when=lambda p: p.get("parse_mode") == "HTML")

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        self.members[(chat_id, user_id)] = status

    async def push(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates (update_id assigned when missing)."""
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        async with self._changed:
            self._updates.append(update)
            self._changed.notify_all()
        return int(update["update_id"])

    # --- queries --------------------------------------------------------------------------

    def of(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method and c.status == 200]

    def attempts(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def seen(self, chat_id: int, message_id: int | None = None) -> list[Seen]:
        """The timeline of one chat (or of one of its messages)."""
        return [s for s in self.timeline if s.chat_id == chat_id
                and (message_id is None or s.message_id == message_id)]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent (as stored, edits applied), oldest first."""
        return [m for m in self.messages.values()
                if chat_id is None or m["chat"]["id"] == chat_id]

    async def wait_for(self, probe: Callable[[], T | bool | None], within: float = 30.0,
                       what: str = "condition") -> T:
        """Wait (bounded) until probe() is truthy; returns it. Fails with the request log."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with self._changed:
            while True:
                result = probe()
                if result:
                    return result  # type: ignore[return-value]
                remaining = deadline - loop.time()
                if remaining <= 0:
                    log = "\n".join(f"  {c.method} {c.status} {_short(c.params)}"
                                    for c in self.calls[-30:])
                    raise AssertionError(f"timed out waiting for {what}; last requests:\n{log}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))

    # --- the API -------------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            params.update(body if isinstance(body, dict) else {})
            return params
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):  # an uploaded file (sendPhoto, …)
                    params[key] = StoredFile(f"up{len(self.files)}", value.filename,
                                             value.file.read())
                    continue
                params[key] = value if isinstance(value, str) else str(value)
        for key, value in list(params.items()):
            if key in TEXT_KEYS or not isinstance(value, str):
                continue
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        params = await self._params(request)
        call = Call(method, params)
        self.calls.append(call)
        try:
            failure = self._scripted(method, params)
            if failure is not None:
                call.status = failure.status
                extra = {"retry_after": failure.retry_after} if failure.retry_after else None
                return _error(failure.status, failure.description, extra)
            handler = getattr(self, "api_" + method, None)
            if method == "sendMessageDraft" and not self.drafts_available:
                handler = None  # an older Bot API: no such method
            if handler is None:
                call.status = 404
                return _error(404, "Not Found")
            try:
                result = await handler(params)
            except ParseError as exc:
                call.status = 400
                return _error(400, f"Bad Request: {exc}")
            except ValueError as exc:
                call.status = 400
                return _error(400, f"Bad Request: {exc}")
            return web.json_response({"ok": True, "result": result})
        finally:
            async with self._changed:
                self._changed.notify_all()

    def _scripted(self, method: str, params: dict[str, Any]) -> Failure | None:
        for failure in self.failures:
            if failure.method == method and failure.times > 0 and (
                failure.when is None or failure.when(params)
            ):
                failure.times -= 1
                return failure
        return None

    def _chat(self, chat_id: int) -> dict[str, Any]:
        kind = self.chat_types.get(chat_id) or ("private" if chat_id > 0 else "supergroup")
        chat = Chat(id=chat_id, type=kind, first_name="someone" if kind == "private" else None,
                    title=None if kind == "private" else f"group {chat_id}")
        return chat.to_dict()

    def _text(self, params: dict[str, Any]) -> str:
        text = str(params.get("text", ""))
        if params.get("parse_mode") == "HTML":
            text = telegram_html(text)
        elif params.get("parse_mode"):
            raise ValueError(f"unsupported parse_mode {params['parse_mode']}")
        if not text.strip():
            raise ValueError("message text is empty")
        if utf16_len(text) > 4096:
            raise ValueError("message is too long")
        return text

    async def api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.me.to_dict()

    async def api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        text = self._text(params)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": self._chat(chat_id), "from": self.me.to_dict(), "text": text,
        }
        if params.get("message_thread_id"):
            message["message_thread_id"] = int(params["message_thread_id"])
            message["is_topic_message"] = True
        markup = params.get("reply_markup")
        self.messages[message["message_id"]] = {
            **message, "html": params.get("text"), "parse_mode": params.get("parse_mode"),
            "reply_parameters": params.get("reply_parameters"), "reply_markup": markup,
        }
        self.timeline.append(Seen(chat_id, message["message_id"], text, params.get("text")))
        if self.drafts.pop(chat_id, None) is not None:  # the message replaces the draft
            self.timeline.append(Seen(chat_id, None, "", None, deleted=True))
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes inline keyboards only
        return message

    async def api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        message_id = int(params["message_id"])
        stored = self.messages.get(message_id)
        if stored is None or stored["chat"]["id"] != int(params["chat_id"]):
            raise ValueError("message to edit not found")
        stored["text"] = self._text(params)
        stored["html"] = params.get("text")
        stored["parse_mode"] = params.get("parse_mode")
        self.timeline.append(Seen(stored["chat"]["id"], message_id, stored["text"],
                                  params.get("text")))
        if params.get("reply_markup"):
            stored["reply_markup"] = params["reply_markup"]
        else:
            stored.pop("reply_markup", None)
        return {k: v for k, v in stored.items()
                if k not in ("html", "parse_mode", "reply_parameters", "reply_markup")}

    async def api_deleteMessage(self, params: dict[str, Any]) -> bool:
        message_id = int(params["message_id"])
        stored = self.messages.get(message_id)
        if stored is None or stored["chat"]["id"] != int(params["chat_id"]):
            raise ValueError("message to delete not found")
        del self.messages[message_id]
        self.timeline.append(Seen(int(params["chat_id"]), message_id, "", None, deleted=True))
        return True

    async def api_sendMessageDraft(self, params: dict[str, Any]) -> bool:
        chat_id = int(params["chat_id"])
        if not int(params.get("draft_id") or 0):
            raise ValueError("draft_id must be non-zero")
        if self._chat(chat_id)["type"] != "private":
            raise ValueError("TEXTDRAFT_PEER_INVALID")
        seen = Seen(chat_id, None, self._text(params), params.get("text"))
        self.drafts[chat_id] = seen
        self.timeline.append(seen)
        return True

    async def api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    async def api_setMyCommands(self, params: dict[str, Any]) -> bool:
        return True

    async def api_sendChatAction(self, params: dict[str, Any]) -> bool:
        return True

    async def api_setMessageReaction(self, params: dict[str, Any]) -> bool:
        return True

    async def api_setWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = params
        return True

    async def api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    async def api_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        user = User(id=user_id, is_bot=False, first_name=f"user{user_id}")
        status = self.members.get((chat_id, user_id), "member")
        if status == "creator":
            return ChatMemberOwner(user=user, is_anonymous=False).to_dict()
        if status == "administrator":
            return ChatMemberAdministrator(
                user=user, can_be_edited=False, is_anonymous=False, can_manage_chat=True,
                can_delete_messages=True, can_manage_video_chats=False,
                can_restrict_members=True, can_promote_members=False, can_change_info=True,
                can_invite_users=True, can_post_stories=False, can_edit_stories=False,
                can_delete_stories=False,
            ).to_dict()
        return ChatMemberMember(user=user).to_dict()

    # --- files ------------------------------------------------------------------------------

    def host_file(self, name: str, data: bytes = b"", *, size: int | None = None,
                  stream_bytes: int = 0) -> StoredFile:
        """A file a user sends: put its id in a document/photo update (document_update)."""
        stored = StoredFile(f"BQAC{len(self.files):04d}", name, data,
                            len(data) if size is None else size, stream_bytes)
        self.files[stored.file_id] = stored
        return stored

    def sent_files(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Photos and documents the bot sent, oldest first: the message plus `file`."""
        return [m for m in self.sent(chat_id) if "file" in m]

    async def api_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            raise ValueError("invalid file_id")
        if stored.size is not None and stored.size > 20 * 1024 * 1024:
            raise ValueError("file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_id + "u",
                "file_size": stored.size, "file_path": f"documents/{stored.file_id}.bin"}

    async def _download(self, request: web.Request) -> web.StreamResponse:
        self.calls.append(Call("file", {"path": request.match_info["path"]}))
        file_id = request.match_info["path"].rsplit("/", 1)[-1].removesuffix(".bin")
        stored = self.files.get(file_id)
        if request.match_info["token"] != self.token or stored is None:
            return web.Response(status=404)
        if not stored.stream_bytes:
            return web.Response(body=stored.data)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            for _ in range(stored.stream_bytes // 65536):
                await response.write(b"0" * 65536)
        return response

    async def api_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._send_file(params, "photo")

    async def api_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._send_file(params, "document")

    def _send_file(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        upload = params.get(kind)
        if not isinstance(upload, StoredFile) or not upload.data:
            raise ValueError(f"there is no {kind} in the request")
        if kind == "photo" and not upload.data.startswith((b"\x89PNG", b"\xff\xd8\xff")):
            raise ValueError("IMAGE_PROCESS_FAILED")
        chat_id = int(params["chat_id"])
        self.files[upload.file_id] = upload
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": self._chat(chat_id), "from": self.me.to_dict(),
        }
        file_info = {"file_id": upload.file_id, "file_unique_id": upload.file_id + "u",
                     "file_size": len(upload.data)}
        if kind == "photo":
            message["photo"] = [{**file_info, "width": 640, "height": 480}]
        else:
            message["document"] = {**file_info, "file_name": upload.name}
        if params.get("caption"):
            message["caption"] = params["caption"]
        if params.get("message_thread_id"):
            message["message_thread_id"] = int(params["message_thread_id"])
        self.messages[message["message_id"]] = {
            **message, "file": upload, "kind": kind,
            "reply_parameters": params.get("reply_parameters"),
        }
        return message

    async def api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 5.0)
        allowed = params.get("allowed_updates")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._changed:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while True:
                ready = [u for u in self._updates
                         if not allowed or any(k in allowed for k in u if k != "update_id")]
                if ready or loop.time() >= deadline:
                    return ready[:100]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(),
                                           timeout=max(deadline - loop.time(), 0.01))


def _error(status: int, description: str, parameters: dict[str, Any] | None = None
           ) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _short(params: dict[str, Any]) -> str:
    text = json.dumps(params, ensure_ascii=False, default=str)
    return text if len(text) < 300 else text[:300] + "…"


# --- updates, as Telegram sends them ---------------------------------------------------------

NOW = datetime(2025, 1, 1, tzinfo=UTC)
_ids = itertools.count(1)
_message_ids = itertools.count(100)

ME = User(id=BOT_ID, is_bot=True, first_name="evobot", username=BOT_USERNAME)


def user(user_id: int, name: str | None = None, *, bot: bool = False) -> User:
    return User(id=user_id, is_bot=bot, first_name=name or f"user{user_id}")


def private(user_id: int) -> Chat:
    return Chat(id=user_id, type=Chat.PRIVATE, first_name=f"user{user_id}")


def group(chat_id: int, *, forum: bool = False) -> Chat:
    return Chat(id=chat_id, type=Chat.SUPERGROUP, title=f"group {chat_id}", is_forum=forum)


def _entities(text: str) -> tuple[MessageEntity, ...]:
    """bot_command at 0 and @mentions, with UTF-16 offsets as Telegram computes them."""
    out = []
    if text.startswith("/"):
        end = len(text.split()[0])
        out.append(MessageEntity(MessageEntity.BOT_COMMAND, 0, end))
    for index, word in _words(text):
        if word.startswith("@") and len(word) > 1:
            offset = len(text[:index].encode("utf-16-le")) // 2
            out.append(MessageEntity(MessageEntity.MENTION, offset, len(word)))
    return tuple(out)


def _words(text: str) -> list[tuple[int, str]]:
    out, index = [], 0
    for word in text.split(" "):
        out.append((index, word.rstrip(",.:!?")))
        index += len(word) + 1
    return out


def message(
    chat: Chat, sender: User | None, text: str, *, message_id: int | None = None,
    reply_to: Message | None = None, thread_id: int | None = None,
    sender_chat: Chat | None = None,
) -> Message:
    msg = Message(
        message_id=message_id or next(_message_ids), date=NOW, chat=chat, from_user=sender,
        text=text, entities=_entities(text), reply_to_message=reply_to,
        message_thread_id=thread_id, is_topic_message=True if thread_id else None,
        sender_chat=sender_chat,
    )
    return msg


def bot_message(chat: Chat, message_id: int, text: str) -> Message:
    return Message(message_id=message_id, date=NOW, chat=chat, from_user=ME, text=text)


def topic_root(chat: Chat, thread_id: int, creator: User) -> Message:
    return Message(message_id=thread_id, date=NOW, chat=chat, from_user=creator,
                   forum_topic_created=ForumTopicCreated(name="topic", icon_color=0x6FB9F0))


def text_update(chat: Chat, sender: User | None, text: str, *, update_id: int | None = None,
                **kwargs: Any) -> dict[str, Any]:
    msg = message(chat, sender, text, **kwargs)
    return Update(update_id=update_id or next(_ids), message=msg).to_dict()


def document_update(chat: Chat, sender: User, file: StoredFile, caption: str = "", *,
                    photo: bool = False, **kwargs: Any) -> dict[str, Any]:
    """A user sends `file` (from BotApiDouble.host_file) as a document, or as a photo."""
    message = Message(message_id=next(_message_ids), date=NOW, chat=chat, from_user=sender,
                      caption=caption or None, caption_entities=_entities(caption),
                      **kwargs)
    data = message.to_dict()
    info = {"file_id": file.file_id, "file_unique_id": file.file_id + "u",
            "file_size": file.size}
    if photo:
        data["photo"] = [{**info, "width": 90, "height": 60}, {**info, "width": 800,
                                                                "height": 600}]
    else:
        data["document"] = {**info, "file_name": file.name, "mime_type": "text/csv"}
    return {"update_id": next(_ids), "message": data}


def edited_update(chat: Chat, sender: User, text: str) -> dict[str, Any]:
    msg = message(chat, sender, text)
    return Update(update_id=next(_ids), edited_message=msg).to_dict()


def reaction(kind: str) -> Any:
    if kind == "custom":
        return ReactionTypeCustomEmoji("5368324170671202286")
    if kind == "paid":
        return ReactionTypePaid()
    return ReactionTypeEmoji(kind)


def reaction_update(chat: Chat, sender: User | None, message_id: int, old: list[str],
                    new: list[str], *, update_id: int | None = None,
                    actor_chat: Chat | None = None) -> dict[str, Any]:
    change = MessageReactionUpdated(
        chat=chat, message_id=message_id, date=NOW,
        old_reaction=[reaction(k) for k in old], new_reaction=[reaction(k) for k in new],
        user=sender, actor_chat=actor_chat,
    )
    return Update(update_id=update_id or next(_ids), message_reaction=change).to_dict()


def callback_update(chat: Chat, sender: User, on_message_id: int, data: str, *,
                    text: str = "answer", update_id: int | None = None,
                    thread_id: int | None = None) -> dict[str, Any]:
    msg = Message(message_id=on_message_id, date=NOW, chat=chat, from_user=ME, text=text,
                  message_thread_id=thread_id, is_topic_message=True if thread_id else None)
    query = CallbackQuery(id=f"cq{next(_ids)}", from_user=sender, chat_instance="ci",
                          data=data, message=msg)
    return Update(update_id=update_id or next(_ids), callback_query=query).to_dict()


def next_update_id() -> int:
    return next(_ids)
