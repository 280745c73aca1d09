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
import time
from typing import Any
from urllib.parse import parse_qs

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.slack.app import SlackBot

EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"


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
        if parse_body(body, request.headers.get("content-type", "")) is None:
            return PlainTextResponse("malformed Slack payload", status_code=400)
        return await self.handler.handle(request)

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
