"""A Slack double that speaks HTTP, for tests and benchmarks (never used by the bot itself;
it lives outside the shipped packages).

`SlackDouble` is a Web API server (aiohttp, 127.0.0.1, a free port): the methods the bot
calls, answered in Slack's documented shapes — `{"ok": true, ...}` or HTTP 200 with
`{"ok": false, "error": "..."}`, and HTTP 429 with `Retry-After` when rate limited. Every call
is recorded; failures are scriptable per method (`rate_limit`, `fail`). Workspaces are
isolated: a token only reaches its own team's channels (`channel_not_found` otherwise).

The bot's messages are kept as a user would see them, and every change (post, update,
delete, streamed text) is appended to `timeline`, so tests can see what was visible before an
answer was complete. Streaming (chat.startStream / appendStream / stopStream) can be refused
per workspace with Slack's error name (`refuse_streaming`).

`Deliveries` builds and signs what Slack sends the app: Events API callbacks, interactivity
(`payload=` form) and slash commands (form), with Slack's v0 HMAC signature.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from aiohttp import web

SECTION_LIMIT = 3000
TEXT_LIMIT = 40_000
# Block Kit's limits on a modal, as views.open enforces them
VIEW_TITLE_LIMIT = 24
VIEW_BLOCKS_LIMIT = 100
VIEW_METADATA_LIMIT = 3000
INPUT_LABEL_LIMIT = 2000
PLACEHOLDER_LIMIT = 150
OPTIONS_LIMIT = 100
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
TEXT_INPUT_LIMIT = 3000
INPUT_ELEMENTS = {"plain_text_input", "static_select"}


def _too_long(text_object: Any, limit: int) -> bool:
    return isinstance(text_object, dict) and len(str(text_object.get("text", ""))) > limit


def _element_problems(element: dict[str, Any]) -> list[str]:
    """What Slack would refuse in an input block's element (the kinds the bot uses)."""
    problems = []
    if element.get("type") not in INPUT_ELEMENTS or not element.get("action_id"):
        problems.append(f"unsupported element {element.get('type')!r} or no action_id")
    if _too_long(element.get("placeholder"), PLACEHOLDER_LIMIT):
        problems.append("placeholder longer than 150")
    if int(element.get("max_length") or 0) > TEXT_INPUT_LIMIT:
        problems.append("max_length over 3000")
    options = element.get("options") or []
    if len(options) > OPTIONS_LIMIT:
        problems.append("more than 100 options")
    for option in options:
        if _too_long(option.get("text"), OPTION_TEXT_LIMIT):
            problems.append(f"option text longer than 75: {option['text'].get('text')!r}")
        if len(str(option.get("value", ""))) > OPTION_VALUE_LIMIT:
            problems.append("option value longer than 150")
    return problems


def _block_problems(block: dict[str, Any]) -> list[str]:
    if block.get("type") != "input":
        return []
    if _too_long(block.get("label"), INPUT_LABEL_LIMIT) or not block.get("label"):
        return [f"input {block.get('block_id')!r}: label missing or longer than 2000"]
    return [f"input {block.get('block_id')!r}: {problem}"
            for problem in _element_problems(block.get("element") or {})]


def view_problems(view: dict[str, Any]) -> list[str]:
    """Why views.open would answer `invalid_arguments` for this modal (empty if it's fine)."""
    problems = [f"{key} longer than 24" for key in ("title", "submit", "close")
                if _too_long(view.get(key), VIEW_TITLE_LIMIT)]
    blocks = view.get("blocks") or []
    if view.get("type") != "modal" or not view.get("title"):
        problems.append("not a modal with a title")
    if len(blocks) > VIEW_BLOCKS_LIMIT:
        problems.append("more than 100 blocks")
    if len(str(view.get("private_metadata", ""))) > VIEW_METADATA_LIMIT:
        problems.append("private_metadata longer than 3000")
    block_ids = [b["block_id"] for b in blocks if b.get("block_id")]
    if len(block_ids) != len(set(block_ids)):
        problems.append("repeated block_id")
    return problems + [p for block in blocks for p in _block_problems(block)]


@dataclass
class Workspace:
    team_id: str
    token: str
    bot_user_id: str
    bot_id: str
    name: str
    enterprise_id: str | None = None


@dataclass
class Call:
    method: str
    token: str | None
    params: dict[str, Any]
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass
class HostedFile:
    """A file users shared, served at its `url_private_download` to its workspace's token."""

    team_id: str
    name: str
    data: bytes
    stream_bytes: int = 0  # > 0: serve that many zero bytes, chunked, whatever `data` says


@dataclass
class UploadedFile:
    """A file the bot uploaded (files.getUploadURLExternal → upload → completeUpload)."""

    file_id: str
    filename: str
    data: bytes = b""
    title: str = ""
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    shared: bool = False


@dataclass
class Shown:
    """One bot message as a user saw it at one moment (an entry of the double's timeline)."""

    channel: str
    ts: str
    thread_ts: str | None
    text: str  # the body: streamed Markdown (unescaped), or the section blocks' text
    blocks: list[dict[str, Any]]
    streaming: bool = False
    deleted: bool = False
    at: float = field(default_factory=time.monotonic)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _sections_text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(str((b.get("text") or {}).get("text", "")) for b in blocks
                     if isinstance(b, dict) and b.get("type") == "section")


def _stream_text(params: dict[str, Any]) -> str:
    """`markdown_text`, or the text of `markdown_text` chunks (slack_sdk's stream helper)."""
    text = str(params.get("markdown_text") or "")
    for chunk in params.get("chunks") or []:
        if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
            text += str(chunk.get("text") or "")
    return text


@dataclass
class Scripted:
    method: str
    status: int
    error: str | None
    retry_after: int | None
    remaining: int


class SlackDouble:
    def __init__(self, *, client_id: str = "1111.2222", client_secret: str = "secret") -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.calls: list[Call] = []
        self.responses: list[dict[str, Any]] = []  # what arrived at response_url
        self.workspaces: dict[str, Workspace] = {}  # by token
        self.revoked: dict[str, Workspace] = {}
        self.users: dict[tuple[str, str], dict[str, Any]] = {}
        self.channel_team: dict[str, str] = {}
        self.missing: set[str] = set()
        self.reactions: set[tuple[str, str, str, str]] = set()  # (team, channel, ts, name)
        self.oauth_codes: dict[str, str] = {}  # code -> team id
        self.app_tokens: set[str] = set()
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict[str, Any]] = []
        self._scripts: list[Scripted] = []
        self.hosted: dict[str, HostedFile] = {}  # by file id
        self.uploaded: dict[str, UploadedFile] = {}  # by file id
        self.messages: dict[tuple[str, str], Shown] = {}  # (channel, ts): the bot's, as seen
        self.timeline: list[Shown] = []  # every change to a bot message, in order
        self.no_streaming: dict[str, str] = {}  # team id -> the error streaming gets
        self.statuses: dict[tuple[str, str], str] = {}  # (channel, thread): assistant status
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> SlackDouble:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{id}", self._response_url)
        app.router.add_get("/link/", self._socket)
        app.router.add_get("/files-pri/{id}/{name}", self._download)
        app.router.add_post("/upload/{id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackDouble:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self) -> str:
        return f"{self.url}/response/{uuid.uuid4().hex[:12]}"

    # --- setup ---------------------------------------------------------------------------

    def add_workspace(self, team_id: str, *, enterprise_id: str | None = None,
                      name: str | None = None) -> Workspace:
        ws = Workspace(
            team_id=team_id, token=f"xoxb-{team_id}-{uuid.uuid4().hex[:10]}",
            bot_user_id=f"U{team_id}BOT", bot_id=f"B{team_id}", name=name or f"team {team_id}",
            enterprise_id=enterprise_id,
        )
        self.workspaces[ws.token] = ws
        return ws

    def workspace(self, team_id: str) -> Workspace:
        return next(w for w in [*self.workspaces.values(), *self.revoked.values()]
                    if w.team_id == team_id)

    def revoke(self, team_id: str) -> None:
        """The workspace revoked the bot token (uninstall): it stops working at once."""
        for token, ws in list(self.workspaces.items()):
            if ws.team_id == team_id:
                self.revoked[token] = self.workspaces.pop(token)

    def add_user(self, team_id: str, user_id: str, *, admin: bool = False,
                 owner: bool = False, name: str | None = None) -> None:
        self.users[(team_id, user_id)] = {
            "id": user_id, "team_id": team_id, "name": name or user_id.lower(),
            "real_name": name or user_id, "is_admin": admin, "is_owner": owner,
            "is_primary_owner": False, "is_bot": False, "deleted": False,
        }

    def add_channel(self, team_id: str, channel: str) -> None:
        self.channel_team[channel] = team_id

    def install_code(self, team_id: str) -> str:
        """An OAuth `code` that oauth.v2.access exchanges for `team_id`'s bot token."""
        code = f"code-{uuid.uuid4().hex[:8]}"
        self.oauth_codes[code] = team_id
        return code

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        self._scripts.append(Scripted(method, 429, "ratelimited", retry_after, times))

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        self._scripts.append(Scripted(method, 200, error, None, times))

    def outage(self, method: str, *, status: int = 503, times: int = 1) -> None:
        """The next `times` calls of `method` get an HTTP `status` (5xx) and do nothing."""
        self._scripts.append(Scripted(method, status, "service_unavailable", None, times))

    def refuse_streaming(self, team_id: str,
                         error: str = "method_not_supported_for_channel_type") -> None:
        """chat.startStream / appendStream / stopStream answer `error` in this workspace."""
        self.no_streaming[team_id] = error

    # --- assertions ------------------------------------------------------------------------

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        return [c for c in self.calls
                if c.method == method and (ok is None or c.ok == ok)]

    def posts(self, channel: str | None = None) -> list[Call]:
        return [c for c in self.calls_to("chat.postMessage", ok=True)
                if channel is None or c.params.get("channel") == channel]

    def thread(self, channel: str, thread_ts: str | None = None) -> list[Shown]:
        """The bot's messages a user sees now in a thread (or the whole channel), oldest
        first."""
        return sorted((m for m in self.messages.values()
                       if m.channel == channel and not m.deleted
                       and (thread_ts is None or m.thread_ts == thread_ts)),
                      key=lambda m: m.ts)

    def seen(self, channel: str, ts: str | None = None) -> list[Shown]:
        """The timeline of the bot's messages in a channel (or of one message)."""
        return [m for m in self.timeline
                if m.channel == channel and (ts is None or m.ts == ts)]

    def ephemerals(self, user: str | None = None) -> list[Call]:
        return [c for c in self.calls_to("chat.postEphemeral", ok=True)
                if user is None or c.params.get("user") == user]

    async def wait_for(self, predicate: Callable[[], Any], *, within_s: float = 30.0,
                       what: str = "condition") -> Any:
        """Poll until predicate() is truthy; its value, or AssertionError after `within_s`."""
        deadline = time.monotonic() + within_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                methods = [f"{c.method}:{c.status}:{c.response.get('error', '')}"
                           for c in self.calls[-15:]]
                raise AssertionError(f"timed out waiting for {what}; last calls: {methods}")
            await asyncio.sleep(0.05)

    # --- the Web API ------------------------------------------------------------------------

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            raw = await request.read()
            if "json" in (request.content_type or ""):
                body = json.loads(raw or b"{}")
                params.update(body if isinstance(body, dict) else {})
            else:
                params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
        for key in ("blocks", "view", "attachments", "files"):
            if isinstance(params.get(key), str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(params[key])
        return params

    @staticmethod
    def _token(request: web.Request, params: dict[str, Any]) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ").strip()
        token = params.get("token")
        return str(token) if token else None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        token = self._token(request, params)
        call = Call(method=method, token=token, params=params)
        self.calls.append(call)
        for script in self._scripts:
            if script.method == method and script.remaining > 0:
                script.remaining -= 1
                call.status = script.status
                call.response = {"ok": False, "error": script.error}
                headers = {"Retry-After": str(script.retry_after)} if script.retry_after else {}
                return web.json_response(call.response, status=script.status, headers=headers)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if method == "oauth.v2.access":
            call.response = self._oauth_access(request, params)
        elif method == "apps.connections.open":
            call.response = (
                {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4()}"}
                if token in self.app_tokens else {"ok": False, "error": "invalid_auth"}
            )
        elif handler is None:
            call.response = {"ok": False, "error": "unknown_method"}
        else:
            ws = self.workspaces.get(token or "")
            if ws is None:
                error = ("token_revoked" if token in self.revoked
                         else "not_authed" if not token else "invalid_auth")
                call.response = {"ok": False, "error": error}
            else:
                call.response = handler(ws, params)
        return web.json_response(call.response)

    async def _response_url(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    # --- files ------------------------------------------------------------------------------

    def host_file(self, ws: Workspace, name: str, data: bytes = b"", *,
                  mimetype: str = "application/octet-stream", declared_size: int | None = None,
                  stream_bytes: int = 0) -> dict[str, Any]:
        """A file shared in `ws`, as it appears in a message event's `files`. `declared_size`
        may lie; `stream_bytes` serves an endless-looking stream of that many bytes."""
        file_id = f"F{uuid.uuid4().hex[:10].upper()}"
        self.hosted[file_id] = HostedFile(ws.team_id, name, data, stream_bytes)
        url = f"{self.url}/files-pri/{file_id}/{quote(name, safe='')}"
        return {
            "id": file_id, "name": name, "title": name, "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1], "size": declared_size
            if declared_size is not None else len(data),
            "mode": "hosted", "is_external": False, "url_private": url,
            "url_private_download": url + "?download=1",
        }

    def uploads(self, channel: str | None = None) -> list[UploadedFile]:
        """Files the bot uploaded and shared (into `channel`, if given), in order."""
        return [f for f in self.uploaded.values()
                if f.shared and (channel is None or f.channel == channel)]

    async def _download(self, request: web.Request) -> web.StreamResponse:
        hosted = self.hosted.get(request.match_info["id"])
        token = self._token(request, {})
        ws = self.workspaces.get(token or "")
        self.calls.append(Call("files.download", token, {"id": request.match_info["id"]}))
        if hosted is None or ws is None or ws.team_id != hosted.team_id:
            # what Slack does without a valid token: a redirect to the sign-in page
            raise web.HTTPFound(f"{self.url}/signin")
        if not hosted.stream_bytes:
            return web.Response(body=hosted.data, content_type="application/octet-stream")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"0" * 65536
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            for _ in range(hosted.stream_bytes // len(chunk)):
                await response.write(chunk)
        return response

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploaded.get(request.match_info["id"])
        if upload is None:
            return web.Response(status=404, text="no such upload")
        upload.data = await request.read()
        return web.Response(text=f"OK - {len(upload.data)}")

    def _m_files_getUploadURLExternal(self, ws: Workspace, params: dict[str, Any]
                                      ) -> dict[str, Any]:
        if not params.get("filename") or not str(params.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{uuid.uuid4().hex[:10].upper()}"
        self.uploaded[file_id] = UploadedFile(file_id, str(params["filename"]))
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.url}/upload/{file_id}"}

    def _m_files_completeUploadExternal(self, ws: Workspace, params: dict[str, Any]
                                        ) -> dict[str, Any]:
        channel = params.get("channel_id")
        error = self._channel_error(ws, channel) if channel else None
        if error is not None:
            return error
        done = []
        for item in params.get("files") or []:
            upload = self.uploaded.get(str(item.get("id")))
            if upload is None or not upload.data:
                return {"ok": False, "error": "file_not_found"}
            upload.title, upload.channel = str(item.get("title") or ""), channel
            upload.thread_ts = params.get("thread_ts")
            upload.initial_comment = params.get("initial_comment")
            upload.shared = bool(channel)
            done.append({"id": upload.file_id, "name": upload.filename, "title": upload.title})
        return {"ok": True, "files": done}

    # --- Socket Mode -------------------------------------------------------------------------

    def add_app_token(self) -> str:
        token = f"xapp-1-A0EVOBOT-{uuid.uuid4().hex[:12]}"
        self.app_tokens.add(token)
        return token

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self.sockets),
                            "debug_info": {"host": "double"},
                            "connection_info": {"app_id": "A0EVOBOT"}})
        async for message in ws:
            if message.type.name == "TEXT":
                self.socket_acks.append(json.loads(message.data))
        self.sockets.remove(ws)
        return ws

    async def socket_send(self, envelope: dict[str, Any]) -> None:
        """Push an envelope (events_api, interactive, slash_commands) to the connected app."""
        await self.wait_for(lambda: self.sockets, what="a Socket Mode connection")
        await self.sockets[-1].send_json(envelope)

    def _channel_error(self, ws: Workspace, channel: str | None) -> dict[str, Any] | None:
        if not channel or channel in self.missing:
            return {"ok": False, "error": "channel_not_found"}
        owner = self.channel_team.setdefault(channel, ws.team_id)
        if owner != ws.team_id:
            return {"ok": False, "error": "channel_not_found"}
        return None

    @staticmethod
    def _blocks_error(blocks: Any) -> dict[str, Any] | None:
        if blocks is None:
            return None
        if not isinstance(blocks, list) or len(blocks) > 50:
            return {"ok": False, "error": "invalid_blocks"}
        for block in blocks:
            text = ((block.get("text") or {}).get("text")) if isinstance(block, dict) else None
            if text is not None and len(text) > SECTION_LIMIT:
                return {"ok": False, "error": "invalid_blocks"}
        return None

    def _m_auth_test(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True, "url": f"https://{ws.team_id.lower()}.slack.com/", "team": ws.name,
            "user": "evobot", "team_id": ws.team_id, "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id, "enterprise_id": ws.enterprise_id,
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        error = self._channel_error(ws, params.get("channel"))
        if error:
            return error
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if len(str(text or "")) > TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        error = self._blocks_error(blocks)
        if error:
            return error
        ts = self.next_ts()
        message = {"type": "message", "user": ws.bot_user_id, "bot_id": ws.bot_id,
                   "text": text or "", "ts": ts, "blocks": blocks or []}
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        self._show(Shown(params["channel"], ts, params.get("thread_ts"),
                         _sections_text(blocks or []) or str(text or ""), list(blocks or [])))
        return {"ok": True, "channel": params["channel"], "ts": ts, "message": message}

    def _show(self, shown: Shown) -> None:
        self.messages[(shown.channel, shown.ts)] = shown
        self.timeline.append(shown)

    def _bot_message(self, ws: Workspace, params: dict[str, Any]
                     ) -> tuple[Shown | None, dict[str, Any] | None]:
        """The bot message `channel` + `ts` name, or Slack's error."""
        error = self._channel_error(ws, params.get("channel"))
        if error:
            return None, error
        shown = self.messages.get((str(params["channel"]), str(params.get("ts"))))
        if shown is None or shown.deleted:
            return None, {"ok": False, "error": "message_not_found"}
        return shown, None

    def _m_chat_update(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        shown, error = self._bot_message(ws, params)
        if error or shown is None:
            return error or {}
        text, blocks = params.get("text"), params.get("blocks")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        error = self._blocks_error(blocks)
        if error:
            return error
        self._show(Shown(shown.channel, shown.ts, shown.thread_ts,
                         _sections_text(blocks or []) or str(text or ""), list(blocks or [])))
        return {"ok": True, "channel": params["channel"], "ts": params["ts"],
                "text": params.get("text", "")}

    def _m_chat_delete(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        shown, error = self._bot_message(ws, params)
        if error or shown is None:
            return error or {}
        self._show(Shown(shown.channel, shown.ts, shown.thread_ts, "", [], deleted=True))
        return {"ok": True, "channel": params["channel"], "ts": params["ts"]}

    # --- streaming ---------------------------------------------------------------------

    def _m_chat_startStream(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        if ws.team_id in self.no_streaming:
            return {"ok": False, "error": self.no_streaming[ws.team_id]}
        channel = str(params.get("channel") or "")
        error = self._channel_error(ws, channel)
        if error:
            return error
        if not channel.startswith("D") and not (params.get("recipient_user_id")
                                                and params.get("recipient_team_id")):
            return {"ok": False, "error": "invalid_arguments"}  # required outside DMs
        text = _stream_text(params)
        if len(text) > 12_000:
            return {"ok": False, "error": "msg_too_long"}
        ts = self.next_ts()
        self._show(Shown(channel, ts, params.get("thread_ts"), _unescape(text), [],
                         streaming=True))
        return {"ok": True, "channel": channel, "ts": ts}

    def _streaming(self, ws: Workspace, params: dict[str, Any]
                   ) -> tuple[Shown | None, dict[str, Any] | None]:
        if ws.team_id in self.no_streaming:
            return None, {"ok": False, "error": self.no_streaming[ws.team_id]}
        shown, error = self._bot_message(ws, params)
        if error or shown is None:
            return None, error
        if not shown.streaming:
            return None, {"ok": False, "error": "message_not_in_streaming_state"}
        if len(_stream_text(params)) > 12_000:
            return None, {"ok": False, "error": "msg_too_long"}
        return shown, None

    def _m_chat_appendStream(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        shown, error = self._streaming(ws, params)
        if error or shown is None:
            return error or {}
        self._show(Shown(shown.channel, shown.ts, shown.thread_ts,
                         shown.text + _unescape(_stream_text(params)), [], streaming=True))
        return {"ok": True, "channel": shown.channel, "ts": shown.ts}

    def _m_chat_stopStream(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        shown, error = self._streaming(ws, params)
        if error or shown is None:
            return error or {}
        blocks = params.get("blocks") or []
        error = self._blocks_error(blocks)
        if error:
            return error
        self._show(Shown(shown.channel, shown.ts, shown.thread_ts,
                         shown.text + _unescape(_stream_text(params)), list(blocks)))
        return {"ok": True, "channel": shown.channel, "ts": shown.ts}

    def _m_assistant_threads_setStatus(self, ws: Workspace, params: dict[str, Any]
                                       ) -> dict[str, Any]:
        error = self._channel_error(ws, params.get("channel_id"))
        if error:
            return error
        self.statuses[(str(params["channel_id"]), str(params.get("thread_ts")))] = str(
            params.get("status", ""))
        return {"ok": True}

    def _m_chat_postEphemeral(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        error = self._channel_error(ws, params.get("channel"))
        if error:
            return error
        if not params.get("user"):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "message_ts": self.next_ts()}

    def _reaction(self, ws: Workspace, params: dict[str, Any], *, add: bool) -> dict[str, Any]:
        error = self._channel_error(ws, params.get("channel"))
        if error:
            return error
        if not params.get("timestamp") or not params.get("name"):
            return {"ok": False, "error": "invalid_arguments"}
        key = (ws.team_id, params["channel"], params["timestamp"], params["name"])
        if add:
            if key in self.reactions:
                return {"ok": False, "error": "already_reacted"}
            self.reactions.add(key)
        else:
            if key not in self.reactions:
                return {"ok": False, "error": "no_reaction"}
            self.reactions.discard(key)
        return {"ok": True}

    def _m_reactions_add(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        return self._reaction(ws, params, add=True)

    def _m_reactions_remove(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        return self._reaction(ws, params, add=False)

    def _m_users_info(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get((ws.team_id, str(params.get("user"))))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _m_views_open(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = params.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        problems = view_problems(view)
        if problems:
            return {"ok": False, "error": "invalid_arguments",
                    "response_metadata": {"messages": problems}}
        return {"ok": True, "view": {**view, "id": f"V{next(self._ts)}", "team_id": ws.team_id}}

    def _m_conversations_open(self, ws: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        users = str(params.get("users") or "")
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        channel = f"D{users.split(',')[0]}"
        self.channel_team.setdefault(channel, ws.team_id)
        return {"ok": True, "channel": {"id": channel}}

    def _oauth_access(self, request: web.Request, params: dict[str, Any]) -> dict[str, Any]:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return {"ok": False, "error": "invalid_client_id"}
        team_id = self.oauth_codes.pop(str(params.get("code")), None)
        if team_id is None:
            return {"ok": False, "error": "invalid_code"}
        ws = self.workspace(team_id)
        return {
            "ok": True, "app_id": "A0EVOBOT", "authed_user": {"id": f"U{team_id}INSTALLER"},
            "scope": "app_mentions:read,chat:write,commands,reactions:read,users:read",
            "token_type": "bot", "access_token": ws.token, "bot_user_id": ws.bot_user_id,
            "team": {"id": ws.team_id, "name": ws.name},
            "enterprise": {"id": ws.enterprise_id} if ws.enterprise_id else None,
            "is_enterprise_install": False,
        }


# --- what Slack sends the app ----------------------------------------------------------------


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 signature headers for a request body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body,
                      hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Delivery:
    body: bytes
    content_type: str

    def headers(self, secret: str, *, timestamp: int | None = None,
                retry: int | None = None) -> dict[str, str]:
        headers = {"Content-Type": self.content_type, **sign(self.body, secret, timestamp)}
        if retry:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return headers


class Deliveries:
    """Payloads in the shapes Slack documents for the Events API, interactivity and
    slash commands."""

    def __init__(self, *, api_app_id: str = "A0EVOBOT") -> None:
        self.api_app_id = api_app_id
        self._n = itertools.count(1)

    def ts(self) -> str:
        return f"{int(time.time())}.{500000 + next(self._n):06d}"

    @staticmethod
    def json(payload: dict[str, Any]) -> Delivery:
        return Delivery(json.dumps(payload).encode(), "application/json")

    @staticmethod
    def form(fields: dict[str, str]) -> Delivery:
        return Delivery(urlencode(fields).encode(), "application/x-www-form-urlencoded")

    def url_verification(self, challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7"
                         ) -> Delivery:
        return self.json({"token": "legacy", "challenge": challenge, "type": "url_verification"})

    def event(self, team_id: str, event: dict[str, Any], *, event_id: str | None = None,
              enterprise_id: str | None = None) -> Delivery:
        return self.json({
            "token": "legacy", "team_id": team_id, "enterprise_id": enterprise_id,
            "api_app_id": self.api_app_id, "event": event, "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": enterprise_id, "team_id": team_id,
                                "user_id": "UBOT", "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
            "event_context": f"4-{uuid.uuid4().hex[:16]}",
        })

    def app_mention(self, ws: Workspace, user: str, channel: str, text: str, *,
                    ts: str | None = None, thread_ts: str | None = None,
                    event_id: str | None = None,
                    files: list[dict[str, Any]] | None = None) -> tuple[Delivery, str]:
        """`files` (from SlackDouble.host_file) make it a mention that shares files."""
        ts = ts or self.ts()
        event: dict[str, Any] = {
            "type": "app_mention", "user": user, "text": f"<@{ws.bot_user_id}> {text}",
            "ts": ts, "channel": channel, "event_ts": ts, "team": ws.team_id,
            "client_msg_id": str(uuid.uuid4()),
        }
        if files:
            event["files"] = files
        if thread_ts:
            event["thread_ts"] = thread_ts
        return self.event(ws.team_id, event, event_id=event_id), ts

    def message(self, ws: Workspace, user: str | None, channel: str, text: str, *,
                channel_type: str = "channel", ts: str | None = None,
                thread_ts: str | None = None, subtype: str | None = None,
                bot_id: str | None = None, event_id: str | None = None,
                **extra: Any) -> tuple[Delivery, str]:
        """`message.channels` / `message.im` (channel_type="im") / a thread reply."""
        ts = ts or self.ts()
        event: dict[str, Any] = {
            "type": "message", "channel": channel, "text": text, "ts": ts, "event_ts": ts,
            "channel_type": channel_type, "team": ws.team_id, **extra,
        }
        if user:
            event["user"] = user
        if thread_ts:
            event["thread_ts"] = thread_ts
            event["parent_user_id"] = user
        if subtype:
            event["subtype"] = subtype
        if bot_id:
            event["bot_id"] = bot_id
        return self.event(ws.team_id, event, event_id=event_id), ts

    def reaction(self, ws: Workspace, user: str, reaction: str, channel: str, ts: str, *,
                 removed: bool = False, item_user: str | None = None) -> Delivery:
        return self.event(ws.team_id, {
            "type": "reaction_removed" if removed else "reaction_added", "user": user,
            "reaction": reaction, "item_user": item_user or ws.bot_user_id,
            "item": {"type": "message", "channel": channel, "ts": ts},
            "event_ts": self.ts(),
        })

    def tokens_revoked(self, ws: Workspace) -> Delivery:
        return self.event(ws.team_id, {"type": "tokens_revoked",
                                       "tokens": {"oauth": [], "bot": [ws.bot_user_id]},
                                       "event_ts": self.ts()})

    def app_uninstalled(self, ws: Workspace) -> Delivery:
        return self.event(ws.team_id, {"type": "app_uninstalled", "event_ts": self.ts()})

    @staticmethod
    def envelope(delivery: Delivery, kind: str = "events_api") -> dict[str, Any]:
        """The same payload as a Socket Mode envelope."""
        text = delivery.body.decode()
        if delivery.content_type == "application/json":
            payload = json.loads(text)
        else:
            form = {k: v[0] for k, v in parse_qs(text).items()}
            payload = json.loads(form["payload"]) if "payload" in form else form
        return {"envelope_id": str(uuid.uuid4()), "type": kind, "payload": payload,
                "accepts_response_payload": kind != "events_api", "retry_attempt": 0,
                "retry_reason": ""}

    def _interaction(self, payload: dict[str, Any]) -> Delivery:
        return self.form({"payload": json.dumps(payload)})

    def block_actions(self, ws: Workspace, user: str, channel: str, message_ts: str,
                      action: dict[str, Any], *, thread_ts: str | None = None,
                      response_url: str = "https://hooks.slack.com/actions/T/1/x") -> Delivery:
        message: dict[str, Any] = {"type": "message", "ts": message_ts, "user": ws.bot_user_id,
                                   "bot_id": ws.bot_id, "text": "…"}
        if thread_ts:
            message["thread_ts"] = thread_ts
        return self._interaction({
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(),
                     "team_id": ws.team_id},
            "api_app_id": self.api_app_id, "token": "legacy",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                          "is_ephemeral": False, "thread_ts": thread_ts},
            "trigger_id": f"{next(self._n)}.{ws.team_id}.{uuid.uuid4().hex[:16]}",
            "team": {"id": ws.team_id, "domain": ws.team_id.lower()},
            "enterprise": None, "is_enterprise_install": False,
            "channel": {"id": channel, "name": "general"},
            "message": message, "state": {"values": {}}, "response_url": response_url,
            "actions": [{**action, "block_id": action.get("block_id", "b1"),
                         "action_ts": self.ts()}],
        })

    def view_submission(self, ws: Workspace, user: str, view: dict[str, Any],
                        values: dict[str, Any]) -> Delivery:
        return self._interaction({
            "type": "view_submission",
            "team": {"id": ws.team_id, "domain": ws.team_id.lower()},
            "user": {"id": user, "username": user.lower(), "name": user.lower(),
                     "team_id": ws.team_id},
            "api_app_id": self.api_app_id, "token": "legacy",
            "trigger_id": f"{next(self._n)}.{ws.team_id}.{uuid.uuid4().hex[:16]}",
            "view": {**view, "id": "V1", "team_id": ws.team_id, "type": "modal",
                     "state": {"values": values}, "hash": "1.abc", "app_id": self.api_app_id,
                     "bot_id": ws.bot_id},
            "response_urls": [], "is_enterprise_install": False, "enterprise": None,
        })

    def slash_command(self, ws: Workspace, user: str, channel: str, text: str, *,
                      response_url: str, command: str = "/evobot") -> Delivery:
        return self.form({
            "token": "legacy", "team_id": ws.team_id, "team_domain": ws.team_id.lower(),
            "channel_id": channel, "channel_name": "general", "user_id": user,
            "user_name": user.lower(), "command": command, "text": text,
            "api_app_id": self.api_app_id, "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{next(self._n)}.{ws.team_id}.{uuid.uuid4().hex[:16]}",
        })
