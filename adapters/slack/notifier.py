"""Posts engine events to Slack through the Web API (the engine's Notifier port).

- Working: 👀 on the objective (reactions.add), removed when the answer or failure is posted.
- AnswerReady: the answer in the objective's thread, split within Block Kit limits, with the
  feedback controls and the footer; the last message's ts is the Delivery ref, so reactions
  and buttons find the execution.
- Announcements (evolution, new tool, rollback, notices): in the channel, as Block Kit.
- 429 + Retry-After is retried by slack_sdk's AsyncRateLimitErrorRetryHandler; posts to one
  channel are paced across processes (adapters.common.pacing); `msg_too_long` is retried in
  smaller pieces; `channel_not_found` / `not_in_channel` answers go to the user's DM instead.
  A delivery that still fails returns an empty Delivery: the answer row stays in the database
  either way.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.dispatch import Announcement, dispatch
from adapters.common.pacing import NoPacing, Pacer, RedisPacer
from adapters.slack import outbound
from adapters.slack.inbound import PLATFORM
from adapters.slack.outbound import SlackMessage
from adapters.slack.state import SlackState
from adapters.slack.tokens import TokenSource
from engine.types import (
    AnswerReady,
    Delivery,
    ExecutionFailed,
    MessageRef,
    OutboundEvent,
    TenantId,
    Working,
)

log = logging.getLogger(__name__)

UNREACHABLE_CHANNEL = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action"}
TOKEN_GONE = {"invalid_auth", "account_inactive", "token_revoked", "not_authed", "team_not_found"}
# message budget and section size for each attempt after msg_too_long
SPLIT_ATTEMPTS = [(outbound.MESSAGE_TEXT_BUDGET, 3000), (3000, 1500), (1000, 500)]


def make_client(token: str | None, api_url: str, *, rate_limit_retries: int = 3,
                timeout_s: int = 30) -> AsyncWebClient:
    """An AsyncWebClient on SLACK_API_URL that honours 429 Retry-After."""
    return AsyncWebClient(
        token=token,
        base_url=api_url if api_url.endswith("/") else api_url + "/",
        timeout=timeout_s,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
        ],
    )


def error_code(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "")
    except Exception:
        return ""


class NotInstalled(Exception):
    """No bot token for the tenant (never installed, uninstalled or revoked)."""


class SlackNotifier:
    """One method per kind of engine event (adapters.common.dispatch picks it); `deliver`
    turns Slack's refusals into an empty Delivery."""

    def __init__(
        self,
        *,
        tokens: TokenSource,
        api_url: str,
        state: SlackState | None = None,
        pace_s: float = 1.0,
        rate_limit_retries: int = 3,
        pacer: Pacer | None = None,
    ) -> None:
        self.tokens = tokens
        self.api_url = api_url
        self.state = state
        self.rate_limit_retries = rate_limit_retries
        self.pacer = pacer or default_pacer(state, pace_s)
        self._clients: dict[str, AsyncWebClient] = {}

    async def client(self, tenant: TenantId) -> AsyncWebClient:
        token = await self.tokens.token_for(tenant)
        if token is None:
            raise NotInstalled(tenant)
        client = self._clients.get(token)
        if client is None:
            client = make_client(token, self.api_url, rate_limit_retries=self.rate_limit_retries)
            self._clients[token] = client
        return client

    async def deliver(self, event: OutboundEvent) -> Delivery:
        try:
            return await dispatch(self, event)
        except NotInstalled:
            log.warning("no Slack token for %s (uninstalled?); dropped %s", event.tenant_id,
                        event.type)
        except SlackApiError as exc:
            code = error_code(exc)
            if code in TOKEN_GONE:
                self.tokens.forget(event.tenant_id)
            log.warning("Slack refused %s for %s: %s", event.type, event.tenant_id, code)
        return Delivery()

    # --- one method per event (adapters.common.dispatch.EventHandlers) -------------------

    async def working(self, event: Working) -> Delivery:
        client = await self.client(event.tenant_id)
        await self._react(client, event.channel_id, event.reply_to, add=True)
        return Delivery()

    async def answer(self, event: AnswerReady) -> Delivery:
        client = await self.client(event.tenant_id)
        await self._react(client, event.channel_id, event.reply_to, add=False)
        channel, thread_ts = event.channel_id, event.thread_id
        try:
            ts = await self._post_all(client, event, channel, thread_ts)
        except SlackApiError as exc:
            if error_code(exc) not in UNREACHABLE_CHANNEL:
                raise
            log.warning("cannot post in %s (%s); answering %s by DM", channel, error_code(exc),
                        event.user_id)
            opened = await client.conversations_open(users=event.user_id)
            channel, thread_ts = str(opened["channel"]["id"]), None
            ts = await self._post_all(client, event, channel, None, preface=outbound.DM_PREFACE)
        await self._remember_answer(event.tenant_id, channel, ts, thread_ts)
        return Delivery(ref=MessageRef(channel_id=channel, message_id=ts, thread_id=thread_ts))

    async def failed(self, event: ExecutionFailed) -> Delivery:
        client = await self.client(event.tenant_id)
        await self._react(client, event.channel_id, event.reply_to, add=False)
        ts = await self._post(client, event.tenant_id, event.channel_id, event.thread_id,
                              outbound.failure_message(event))
        return Delivery(ref=MessageRef(channel_id=event.channel_id, message_id=ts,
                                       thread_id=event.thread_id))

    async def announce(self, event: Announcement) -> Delivery:
        if not event.channel_id:
            log.info("no channel for %s of %s; not announced", event.type, event.tenant_id)
            return Delivery()
        client = await self.client(event.tenant_id)
        message = outbound.document_message(event.document)
        try:
            ts = await self._post(client, event.tenant_id, event.channel_id, None, message)
        except SlackApiError as exc:
            if error_code(exc) != "msg_too_long":
                raise
            short = event.document.model_copy(update={"blocks": event.document.blocks[:1]})
            ts = await self._post(client, event.tenant_id, event.channel_id, None,
                                  outbound.document_message(short))
        return Delivery(ref=MessageRef(channel_id=event.channel_id, message_id=ts))

    # --- pieces -----------------------------------------------------------------------------

    async def _react(self, client: AsyncWebClient, channel: str, ts: str | None, *,
                     add: bool) -> None:
        if not ts:
            return
        call = client.reactions_add if add else client.reactions_remove
        try:
            await call(channel=channel, timestamp=ts, name=outbound.WORKING_REACTION)
        except SlackApiError as exc:  # already_reacted, no_reaction, missing scope: cosmetic
            log.debug("working reaction: %s", error_code(exc))

    async def _post(self, client: AsyncWebClient, tenant: TenantId, channel: str,
                    thread_ts: str | None, message: SlackMessage, **extra: Any) -> str:
        await self.pacer.turn(f"{tenant}:{channel}")
        kwargs: dict[str, Any] = {
            "channel": channel, "text": message.text, "blocks": message.blocks,
            "unfurl_links": False, "unfurl_media": False, **extra,
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        response = await client.chat_postMessage(**kwargs)
        return str(response["ts"])

    async def _post_all(self, client: AsyncWebClient, event: AnswerReady, channel: str,
                        thread_ts: str | None, preface: str | None = None) -> str:
        """Post the answer's messages; on msg_too_long, again in smaller pieces."""
        last_error: SlackApiError | None = None
        for budget, section_limit in SPLIT_ATTEMPTS:
            messages = outbound.answer_messages(event, message_budget=budget,
                                                section_limit=section_limit, preface=preface)
            try:
                ts = ""
                for message in messages:
                    ts = await self._post(client, event.tenant_id, channel, thread_ts, message)
                return ts
            except SlackApiError as exc:
                if error_code(exc) != "msg_too_long":
                    raise
                last_error = exc
                log.info("msg_too_long for execution %s; splitting smaller", event.execution_id)
        assert last_error is not None
        raise last_error

    async def _remember_answer(self, tenant: TenantId, channel: str, ts: str,
                               thread_ts: str | None) -> None:
        """So reactions find the answer's thread and replies in it are follow-ups."""
        if self.state is None:
            return
        try:
            await self.state.mark_answer(tenant, channel, ts, thread_ts)
        except Exception:
            log.exception("could not remember answer %s", ts)


def default_pacer(state: SlackState | None, pace_s: float) -> Pacer:
    """At most one post per channel per `pace_s` across every process, on the adapter's Redis
    (Slack allows about one message per second per channel); no pacing without Redis."""
    if state is None:
        return NoPacing()
    return RedisPacer(state.redis, namespace=PLATFORM, interval_s=pace_s)
