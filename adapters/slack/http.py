"""Slack's HTTP endpoints as Starlette routes: /slack/events, /slack/install,
/slack/oauth_redirect.

In front of Bolt's own handling: the signature is checked first (slack_sdk's SignatureVerifier,
the one Bolt uses: a bad or stale signature is a 401 before anything is parsed or recorded),
then the body must be one of Slack's shapes (else 400). A redelivered event id is acknowledged
without running again by the app itself (`adapters.slack.app.DedupedApp`), so Socket Mode
gets the same guarantee.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qs

from slack_bolt.adapter.starlette.async_handler import (
    AsyncSlackRequestHandler,
    to_async_bolt_request,
    to_starlette_response,
)
from slack_bolt.async_app import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.slack import inbound
from adapters.slack.app import SlackBot

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# Events, interactions and slash commands all arrive on EVENTS_PATH, so one limit covers them.
# The largest is an event for a message: text up to 40,000 characters (Slack truncates
# beyond), repeated in its rich_text blocks; at worst 12 bytes of JSON per character (an
# escaped surrogate pair) that is 2 x 480,000 bytes. Interactions carry our own messages and
# modals (at most 50 / 100 blocks of 3,000 characters, and we send far fewer) and slash
# command text is shorter than a message. 1 MiB fits all of it; anything bigger is not Slack.
MAX_BODY = 1 << 20


def parse_body(body: bytes, content_type: str) -> dict[str, Any] | None:
    """The payload of a Slack request, or None when it is not one of Slack's shapes:
    Events API JSON, an interactivity `payload=` form, a slash command form, an ssl_check."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        return None
    if "json" in content_type or (not content_type and text.lstrip().startswith("{")):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) and isinstance(data.get("type"), str) else None
    form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if "payload" in form:
        try:
            data = json.loads(form["payload"])
        except ValueError:
            return None
        return data if isinstance(data, dict) and isinstance(data.get("type"), str) else None
    if form.get("command") or form.get("ssl_check"):
        return form
    return None


def dispatchable(body: bytes, payload: dict[str, Any]) -> bool:
    """Bolt can route it and our listeners can read it (`inbound.well_formed_payload`), and
    no string in it holds a lone surrogate (JSON can escape one, UTF-8 — a Redis key, a
    database row — can't hold it)."""
    return inbound.well_formed_payload(payload) and not _lone_surrogate(body, payload)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _lone_surrogate(body: bytes, payload: dict[str, Any]) -> bool:
    if not _SURROGATE_ESCAPE.search(body):  # the common case: no escaped surrogate at all
        return False
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _bolt_request(request: Request, body: bytes, payload: dict[str, Any]
                  ) -> AsyncBoltRequest | None:
    """Bolt's request, or None when Bolt can't read the envelope (a `team` that is a number,
    `authorizations` that is not a list of objects…) or it names no workspace (every tenant
    is one)."""
    try:
        bolt_request = to_async_bolt_request(request, body)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        log.info("signed Slack payload Bolt can't read (%s); ignored", exc)
        return None
    context = bolt_request.context
    if payload.get("type") == "url_verification" or payload.get("ssl_check"):
        return bolt_request
    ids = [i for i in (context.team_id, context.enterprise_id) if i is not None]
    if not ids or not all(isinstance(i, str) and _SLACK_ID.match(i) for i in ids):
        log.info("signed Slack payload without a workspace id of Slack's shape; ignored")
        return None
    return bolt_request


_SLACK_ID = re.compile(r"^[A-Z0-9]{1,32}$")  # T0ACME, E0GRID: the tenant id is made of them


def ignored() -> Response:
    """A signed delivery we can't act on is acknowledged, not refused: Slack retries a
    non-2xx event three more times, and disables the app's events when failures pile up."""
    return Response(status_code=200, headers={"X-Slack-No-Retry": "1"})


class SlackHttp:
    """The routes plus their lifecycle, mounted by the web process (`bot/web.py`)."""

    def __init__(self, bot: SlackBot) -> None:
        self.bot = bot
        self.handler = AsyncSlackRequestHandler(bot.app)
        self.verifier = SignatureVerifier(bot.settings.signing_secret)
        self.routes: list[BaseRoute] = [
            Route(EVENTS_PATH, self.events, methods=["POST"]),
            Route(INSTALL_PATH, self.oauth, methods=["GET"]),
            Route(REDIRECT_PATH, self.oauth, methods=["GET"]),
        ]
        # checked by the web process before the signature (adapters/common/body_limit.py)
        self.body_limits = {EVENTS_PATH: MAX_BODY}

    def verified(self, body: bytes, request: Request) -> bool:
        timestamp = request.headers.get("x-slack-request-timestamp")
        signature = request.headers.get("x-slack-signature")
        try:
            return self.verifier.is_valid(body=body.decode("utf-8"), timestamp=timestamp,
                                          signature=signature)
        except UnicodeDecodeError:  # not a Slack payload, but was it signed by Slack?
            return self._raw_valid(body, timestamp, signature)
        except (TypeError, ValueError):  # a timestamp that is not a number
            return False

    def _raw_valid(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        if not timestamp or not signature or not timestamp.isdigit():
            return False
        if abs(time.time() - int(timestamp)) > 5 * 60:
            return False
        secret = self.bot.settings.signing_secret.encode()
        digest = hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
        return hmac.compare_digest(f"v0={digest.hexdigest()}", signature)

    async def events(self, request: Request) -> Response:
        body = await request.body()
        if not self.verified(body, request):
            return PlainTextResponse("invalid signature", status_code=401)
        payload = parse_body(body, request.headers.get("content-type", ""))
        if payload is None:
            return PlainTextResponse("malformed Slack payload", status_code=400)
        bolt_request = (_bolt_request(request, body, payload) if dispatchable(body, payload)
                        else None)
        if bolt_request is None:
            return ignored()
        response = await self.bot.app.async_dispatch(bolt_request)
        # signed and well-formed, but nothing here handles it (Bolt answers 404)
        return ignored() if response.status == 404 else to_starlette_response(response)

    async def oauth(self, request: Request) -> Response:
        if self.bot.app.oauth_flow is None:
            return JSONResponse(
                {"error": "OAuth installs need SLACK_CLIENT_ID and SLACK_CLIENT_SECRET"},
                status_code=404,
            )
        return await self.handler.handle(request)

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        await self.bot.drain()
