"""Posts engine events to Slack through the Web API (the engine's Notifier port).

- Working: 👀 on the objective (reactions.add), removed when the answer or failure is posted.
- AnswerReady: the answer in the objective's thread, split within Block Kit limits, with the
  feedback controls and the footer; the last message's ts is the Delivery ref, so reactions
  and buttons find the execution.
- AnswerDelta: the answer while it is written, streamed in its thread (adapters/slack/
  streaming.py: Slack's streaming methods, or a message updated with chat.update where a
  workspace refuses them — remembered per workspace); the AnswerReady that follows finishes
  that message, so it ends exactly as a non-streamed answer. A `replaces` message (left by an
  interrupted attempt) is updated, never posted again. Working also sets the assistant
  thread's "is thinking…" status where Slack offers it.
- Announcements (evolution, new tool, rollback, notices): in the channel, as Block Kit.
- 429 + Retry-After is retried by slack_sdk's AsyncRateLimitErrorRetryHandler; posts to one
  channel are paced across processes (adapters.common.pacing); `msg_too_long` is retried in
  smaller pieces; `channel_not_found` / `not_in_channel` answers go to the user's DM instead.
  A delivery that still fails returns an empty Delivery: the answer row stays in the database
  either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.dispatch import Announcement, dispatch
from adapters.common.pacing import NoPacing, Pacer, RedisPacer
from adapters.common.streaming import Cadence, Refusals
from adapters.slack import files, outbound
from adapters.slack.inbound import PLATFORM
from adapters.slack.outbound import SlackMessage
from adapters.slack.state import SlackState
from adapters.slack.streaming import (
    STREAMING_REFUSED,
    THINKING,
    Diverged,
    EditedStream,
    NativeStream,
)
from adapters.slack.tokens import TokenSource
from engine.types import (
    AnswerDelta,
    AnswerReady,
    Delivery,
    ExecutionFailed,
    FileShared,
    MessageRef,
    OutboundEvent,
    TenantId,
    Working,
)

log = logging.getLogger(__name__)

UNREACHABLE_CHANNEL = {"channel_not_found", "not_in_channel", "is_archived", "restricted_action"}
TOKEN_GONE = {"invalid_auth", "account_inactive", "token_revoked", "not_authed", "team_not_found"}
MAX_LIVE = 1000  # answers streaming in this process at most
# message budget and section size for each attempt after msg_too_long
SPLIT_ATTEMPTS = [(outbound.MESSAGE_TEXT_BUDGET, 3000), (3000, 1500), (1000, 500)]


def make_client(token: str | None, api_url: str, *, rate_limit_retries: int = 3,
                timeout_s: int = 30) -> AsyncWebClient:
    """An AsyncWebClient on SLACK_API_URL that honours 429 Retry-After and waits out a short
    Slack outage (500/503, retried after 0.5, 1, 2 and 4 s): the worker holds the answer
    meanwhile, so answers still arrive in order."""
    return AsyncWebClient(
        token=token,
        base_url=api_url if api_url.endswith("/") else api_url + "/",
        timeout=timeout_s,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            AsyncServerErrorRetryHandler(max_retry_count=4),
        ],
    )


def error_code(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "")
    except Exception:
        return ""


def unreachable(exc: SlackApiError) -> bool:
    """Slack answered 5xx or 429 even after slack_sdk's retries (an outage, not a refusal)."""
    status = getattr(exc.response, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def retry_after_s(exc: SlackApiError) -> float | None:
    """Retry-After of a 429 (slack_sdk's retries exhausted); None for any other error."""
    response = exc.response
    if getattr(response, "status_code", None) != 429:
        return None
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after") or 1
    try:
        return float(value[0] if isinstance(value, list) else value)
    except (TypeError, ValueError):
        return 1.0


def team_of(tenant: TenantId) -> str:
    """The team id in `slack:T1` / `slack:E1:T1` (a stream's recipient_team_id)."""
    return tenant.rsplit(":", 1)[-1]


@dataclass
class LiveAnswer:
    """One execution's answer while it streams (in this process, for the whole execution)."""

    stream: NativeStream | EditedStream
    channel: str
    thread_ts: str | None
    cadence: Cadence
    lock: asyncio.Lock

    def ref(self) -> MessageRef | None:
        ts = self.stream.first_ts
        return MessageRef(channel_id=self.channel, message_id=ts,
                          thread_id=self.thread_ts) if ts else None


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
        update_every_s: float = 1.0,
    ) -> None:
        self.tokens = tokens
        self.api_url = api_url
        self.state = state
        self.rate_limit_retries = rate_limit_retries
        self.pacer = pacer or default_pacer(state, pace_s)
        self.update_every_s = update_every_s  # chat.update of a partial answer, at most
        # workspaces that refuse Slack's streaming methods (shared through Redis)
        self.no_streaming = Refusals(state.redis if state else None, namespace=PLATFORM,
                                     feature="streaming")
        self._live: dict[int, LiveAnswer] = {}  # by execution id, until its answer or failure

    async def client(self, tenant: TenantId) -> AsyncWebClient:
        """A client for the tenant's current token, made per call: it is only settings
        (slack_sdk opens a session per request), so nothing is held for a workspace."""
        token = await self.tokens.token_for(tenant)
        if token is None:
            raise NotInstalled(tenant)
        return make_client(token, self.api_url, rate_limit_retries=self.rate_limit_retries)

    async def deliver(self, event: OutboundEvent) -> Delivery:
        try:
            delivery = await dispatch(self, event)
            if isinstance(event, AnswerReady) and event.files and delivery.ref is not None:
                await self._answer_files(event, delivery.ref)
            return delivery
        except NotInstalled:
            log.warning("no Slack token for %s (uninstalled?); dropped %s", event.tenant_id,
                        event.type)
        except SlackApiError as exc:
            code = error_code(exc)
            if code in TOKEN_GONE:
                self.tokens.forget(event.tenant_id)
            log.warning("Slack refused %s for %s: %s", event.type, event.tenant_id, code)
            if unreachable(exc):  # down or rate-limiting past our retries: the engine re-posts
                return Delivery(failed=True)
        return Delivery()

    # --- one method per event (adapters.common.dispatch.EventHandlers) -------------------

    async def working(self, event: Working) -> Delivery:
        client = await self.client(event.tenant_id)
        await self._react(client, event.channel_id, event.reply_to, add=True)
        if event.thread_id:
            with contextlib.suppress(SlackApiError):  # only assistant threads have a status
                await client.assistant_threads_setStatus(
                    channel_id=event.channel_id, thread_ts=event.thread_id, status=THINKING)
        return Delivery()

    async def delta(self, event: AnswerDelta) -> Delivery:
        live = self._live.get(event.execution_id) or await self._open(event)
        async with live.lock:
            if live.cadence.due():
                try:
                    await self._write(live, event)
                except SlackApiError as exc:
                    wait = retry_after_s(exc)
                    if wait is None:
                        raise
                    live.cadence.back_off(wait)  # the next delta carries this text too
        return Delivery(ref=live.ref())

    async def answer(self, event: AnswerReady) -> Delivery:
        live = await self._finishing(event.execution_id, event.tenant_id, event.replaces,
                                     event.thread_id)
        if live is None:
            return await self._answer_whole(event)
        client = await self.client(event.tenant_id)
        await self._react(client, event.channel_id, event.reply_to, add=False)
        async with live.lock:
            ts = await self._finish(live, event)
        await self._remember_answer(event.tenant_id, live.channel, ts, live.thread_ts)
        return Delivery(ref=MessageRef(channel_id=live.channel, message_id=ts,
                                       thread_id=live.thread_ts))

    async def _answer_whole(self, event: AnswerReady) -> Delivery:
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
        live = await self._finishing(event.execution_id, event.tenant_id, event.replaces,
                                     event.thread_id)
        if live is not None:  # the partial answer says it was cut short
            async with live.lock:
                ts = await live.stream.fail(event.reason)
            return Delivery(ref=MessageRef(channel_id=live.channel, message_id=ts,
                                           thread_id=live.thread_ts))
        ts = await self._post(client, event.tenant_id, event.channel_id, event.thread_id,
                              outbound.failure_message(event))
        return Delivery(ref=MessageRef(channel_id=event.channel_id, message_id=ts,
                                       thread_id=event.thread_id))

    async def file(self, event: FileShared) -> Delivery:
        if not event.channel_id:
            log.info("no channel for a file of %s; not posted", event.tenant_id)
            return Delivery()
        client = await self.client(event.tenant_id)
        await files.upload(client, event.channel_id, event.thread_id, [event.file],
                           comment=event.caption)
        return Delivery()

    async def _answer_files(self, event: AnswerReady, ref: MessageRef) -> None:
        """The files the agent's code made, under its answer (adapters/slack/files.py). A
        refused upload is said in the thread; the answer stands either way."""
        client = await self.client(event.tenant_id)
        try:
            await files.upload(client, ref.channel_id, ref.thread_id, event.files)
        except SlackClientError as exc:  # refused (SlackApiError) or the upload itself failed
            log.warning("upload of %d files for execution %s failed: %s", len(event.files),
                        event.execution_id, exc)
            text = files.upload_failed_text(event.files)
            with contextlib.suppress(SlackApiError):
                await self._post(client, event.tenant_id, ref.channel_id, ref.thread_id,
                                 SlackMessage(text=text, blocks=[outbound.section(text)]))

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

    # --- streams ----------------------------------------------------------------------------

    async def _open(self, event: AnswerDelta) -> LiveAnswer:
        """The stream of a new answer: Slack's streaming in a thread of a workspace that
        hasn't refused it; else (or to finish an interrupted attempt's message) updates."""
        client = await self.client(event.tenant_id)
        if event.replaces is not None:
            stream: NativeStream | EditedStream = await self._resumed(
                client, event.tenant_id, event.replaces)
            channel, thread_ts = event.replaces.channel_id, event.replaces.thread_id
        else:
            channel, thread_ts = event.channel_id, event.thread_id
            stream = self._edited(client, event.tenant_id, channel, thread_ts)
            if thread_ts and not await self.no_streaming.refused(event.tenant_id):
                stream = NativeStream(client, channel, thread_ts,
                                      team_id=team_of(event.tenant_id), user_id=event.user_id)
        every_s = 0.0 if isinstance(stream, NativeStream) else self.update_every_s
        live = LiveAnswer(stream, channel, thread_ts or event.thread_id, Cadence(every_s),
                          asyncio.Lock())
        if len(self._live) >= MAX_LIVE:  # answers whose end never came (their job died)
            self._live.pop(next(iter(self._live)))
        self._live[event.execution_id] = live
        return live

    async def _write(self, live: LiveAnswer, event: AnswerDelta) -> None:
        stream = live.stream
        if isinstance(stream, EditedStream):
            await stream.write(event.text)
            live.cadence.shown()
            return
        try:
            await stream.write(event.text)
        except (Diverged, SlackApiError) as exc:
            if isinstance(exc, SlackApiError) and retry_after_s(exc) is not None:
                raise
            await self._go_edited(live, event.tenant_id, exc)
            await self._write(live, event)

    async def _finish(self, live: LiveAnswer, event: AnswerReady) -> str:
        """The streamed answer ends as the non-streamed one would (updated into it, when
        streaming can't finish it)."""
        if isinstance(live.stream, NativeStream):
            try:
                return await live.stream.finish(event)
            except (Diverged, SlackApiError) as exc:
                await self._go_edited(live, event.tenant_id, exc)
        assert isinstance(live.stream, EditedStream)
        last_error: SlackApiError | None = None
        for budget, section_limit in SPLIT_ATTEMPTS:
            try:
                return await live.stream.show(outbound.answer_messages(
                    event, message_budget=budget, section_limit=section_limit))
            except SlackApiError as exc:
                if error_code(exc) != "msg_too_long":
                    raise
                last_error = exc
        assert last_error is not None
        raise last_error

    async def _go_edited(self, live: LiveAnswer, tenant: TenantId, why: Exception) -> None:
        """From Slack's streaming to updated messages: refused (remembered for the
        workspace), the text restarted, or the stream ended on Slack's side."""
        assert isinstance(live.stream, NativeStream)
        code = error_code(why) if isinstance(why, SlackApiError) else "restarted"
        if live.stream.first_ts is None and code in STREAMING_REFUSED:
            log.info("Slack streaming refused for %s (%s); updating messages", tenant, code)
            await self.no_streaming.refuse(tenant)
        elif live.stream.first_ts is None and code != "restarted":
            raise why
        else:
            log.info("stream of %s goes on by chat.update (%s)", tenant, code)
        posted = await live.stream.abandon()
        live.stream = self._edited(live.stream.client, tenant, live.channel, live.thread_ts,
                                   posted)
        live.cadence = Cadence(self.update_every_s)

    async def _finishing(self, execution_id: int, tenant: TenantId,
                         replaces: MessageRef | None, thread_ts: str | None
                         ) -> LiveAnswer | None:
        """The stream an answer or failure ends: this process's, or the message an earlier
        attempt left; None when nothing was shown yet."""
        live = self._live.pop(execution_id, None)
        if live is not None and live.stream.first_ts is not None:
            return live
        if replaces is None:
            return None
        client = await self.client(tenant)
        stream = await self._resumed(client, tenant, replaces)
        return LiveAnswer(stream, replaces.channel_id, replaces.thread_id or thread_ts,
                          Cadence(0.0), asyncio.Lock())

    async def _resumed(self, client: AsyncWebClient, tenant: TenantId,
                       ref: MessageRef) -> EditedStream:
        """The partial message an interrupted attempt left, to be updated (its stream, if
        Slack still has one open, stopped first)."""
        with contextlib.suppress(SlackApiError):
            await client.chat_stopStream(channel=ref.channel_id, ts=ref.message_id)
        return self._edited(client, tenant, ref.channel_id, ref.thread_id, [ref.message_id])

    def _edited(self, client: AsyncWebClient, tenant: TenantId, channel: str,
                thread_ts: str | None, posted: list[str] | None = None) -> EditedStream:
        async def post(message: SlackMessage) -> str:
            return await self._post(client, tenant, channel, thread_ts, message)

        async def pace() -> None:
            await self.pacer.turn(f"{tenant}:{channel}")

        return EditedStream(client, channel, post, pace, posted)

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
