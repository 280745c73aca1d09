"""Posts engine events to Slack through the Web API (the engine's Notifier port).

- Working: 👀 on the objective (reactions.add), removed when the answer or failure is posted.
- AnswerReady: the answer in the objective's thread, split within Block Kit limits, with the
  feedback controls and the footer; the last message's ts is the Delivery ref, so reactions
  and buttons find the execution.
- Announcements (evolution, new tool, rollback, notices): in the channel, as Block Kit.
- 429 + Retry-After is retried by slack_sdk's AsyncRateLimitErrorRetryHandler; posts to one
  channel are paced; `msg_too_long` is retried in smaller pieces; `channel_not_found` /
  `not_in_channel` answers go to the user's DM instead. A delivery that still fails returns an
  empty Delivery: the answer row stays in the database either way.
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

from adapters.slack import convert
from adapters.slack.convert import SlackMessage
from adapters.slack.state import SlackState
from adapters.slack.tokens import TokenSource
from engine.types import (
    AnswerReady,
    Delivery,
    EvolutionAnnounced,
    ExecutionFailed,
    MessageRef,
    Notice,
    OutboundEvent,
    RolledBack,
    TenantId,
    ToolAnnounced,
    Working,
)

log = logging.getLogger(__name__)
Announcement = EvolutionAnnounced | ToolAnnounced | RolledBack | Notice

UNREACHABLE_CHANNEL = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action"}
TOKEN_GONE = {"invalid_auth", "account_inactive", "token_revoked", "not_authed", "team_not_found"}
# message budget and section size for each attempt after msg_too_long
SPLIT_ATTEMPTS = [(convert.MESSAGE_TEXT_BUDGET, 3000), (3000, 1500), (1000, 500)]


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


class SlackNotifier:
    def __init__(
        self,
        *,
        tokens: TokenSource,
        api_url: str,
        state: SlackState | None = None,
        pace_s: float = 1.0,
        rate_limit_retries: int = 3,
    ) -> None:
        self.tokens = tokens
        self.api_url = api_url
        self.state = state
        self.pace_s = pace_s
        self.rate_limit_retries = rate_limit_retries
        self._clients: dict[str, AsyncWebClient] = {}

    async def client(self, tenant: TenantId) -> AsyncWebClient | None:
        token = await self.tokens.token_for(tenant)
        if token is None:
            return None
        client = self._clients.get(token)
        if client is None:
            client = make_client(token, self.api_url, rate_limit_retries=self.rate_limit_retries)
            self._clients[token] = client
        return client

    async def deliver(self, event: OutboundEvent) -> Delivery:
        client = await self.client(event.tenant_id)
        if client is None:
            log.warning("no Slack token for %s (uninstalled?); dropped %s", event.tenant_id,
                        event.type)
            return Delivery()
        try:
            if isinstance(event, Working):
                await self._react(client, event.channel_id, event.reply_to, add=True)
                return Delivery()
            if isinstance(event, AnswerReady):
                return await self._answer(client, event)
            if isinstance(event, ExecutionFailed):
                await self._react(client, event.channel_id, event.reply_to, add=False)
                message = convert.failure_message(event)
                ts = await self._post(client, event.tenant_id, event.channel_id,
                                      event.thread_id, message)
                return Delivery(ref=MessageRef(channel_id=event.channel_id, message_id=ts,
                                               thread_id=event.thread_id))
            if isinstance(event, EvolutionAnnounced | ToolAnnounced | RolledBack | Notice):
                return await self._announce(client, event)
        except SlackApiError as exc:
            code = error_code(exc)
            if code in TOKEN_GONE:
                self.tokens.forget(event.tenant_id)
            log.warning("Slack refused %s for %s: %s", event.type, event.tenant_id, code)
        return Delivery()

    # --- pieces -----------------------------------------------------------------------------

    async def _react(self, client: AsyncWebClient, channel: str, ts: str | None, *,
                     add: bool) -> None:
        if not ts:
            return
        try:
            if add:
                await client.reactions_add(channel=channel, timestamp=ts,
                                           name=convert.WORKING_REACTION)
            else:
                await client.reactions_remove(channel=channel, timestamp=ts,
                                              name=convert.WORKING_REACTION)
        except SlackApiError as exc:  # already_reacted, no_reaction, missing scope: cosmetic
            log.debug("working reaction: %s", error_code(exc))

    async def _post(self, client: AsyncWebClient, tenant: TenantId, channel: str,
                    thread_ts: str | None, message: SlackMessage, **extra: Any) -> str:
        if self.state is not None:
            await self.state.pace(tenant, channel, self.pace_s)
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
            messages = convert.answer_messages(event, message_budget=budget,
                                               section_limit=section_limit)
            if preface:
                messages[0].blocks.insert(0, convert.context(preface))
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

    async def _answer(self, client: AsyncWebClient, event: AnswerReady) -> Delivery:
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
            ts = await self._post_all(
                client, event, channel, None,
                preface="I couldn't post in the channel you asked in, so here is the answer.",
            )
        if self.state is not None:
            try:
                await self.state.mark_answer(event.tenant_id, channel, ts, thread_ts)
            except Exception:
                log.exception("could not remember answer %s", ts)
        return Delivery(ref=MessageRef(channel_id=channel, message_id=ts, thread_id=thread_ts))

    async def _announce(self, client: AsyncWebClient, event: Announcement) -> Delivery:
        if not event.channel_id:
            log.info("no channel for %s of %s; not announced", event.type, event.tenant_id)
            return Delivery()
        message = convert.document_message(event.document)
        try:
            ts = await self._post(client, event.tenant_id, event.channel_id, None, message)
        except SlackApiError as exc:
            if error_code(exc) != "msg_too_long":
                raise
            short = event.document.model_copy(update={"blocks": event.document.blocks[:1]})
            ts = await self._post(client, event.tenant_id, event.channel_id, None,
                                  convert.document_message(short))
        return Delivery(ref=MessageRef(channel_id=event.channel_id, message_id=ts))
