"""The Bolt AsyncApp: Slack events, buttons, the comment modal and `/evobot` → the engine.

Each listener is a small method of `SlackBot`: parse the payload (`inbound`), call
`engine.service`, render the reply (`outbound`). `register()` is the table of which listener
answers what.

`process_before_response=True`: every listener finishes its database work (record the
execution or the rating, enqueue the job) before Slack gets its 200, so an acknowledged
event is never lost; listeners only do fast work (a row, a Redis call) inside the ack, and
anything that talks to the Web API runs afterwards as a background task — except the
users.info lookup that marks an admin's comment, which waits at most
`admin_lookup_budget_s`. Slash commands answer within the 3-second window when they can, and
through `response_url` when they can't.
A redelivered event id runs once (`DedupedApp`, over HTTP and Socket Mode alike), and the
engine's unique (channel, message) key stops one post from becoming two executions.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.listener.async_builtins import AsyncTokenRevocationListeners
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.dedup import Dedup, RedisDedup
from adapters.slack import files, inbound, outbound
from adapters.slack.notifier import error_code, make_client
from adapters.slack.state import SlackState
from adapters.slack.tokens import TokenSource
from engine.commands import needs_admin
from engine.service import EvobotService
from engine.storage.outage import storage_unavailable
from engine.types import (
    CommandReply,
    FeedbackResult,
    InboundCommand,
    InboundFeedback,
    InboundMessage,
    TenantId,
)

log = logging.getLogger(__name__)

BOT_SCOPES = [
    "app_mentions:read", "channels:history", "groups:history", "im:history", "mpim:history",
    "im:write", "chat:write", "commands", "reactions:read", "reactions:write", "users:read",
    "files:read", "files:write",
]
COMMAND = "/evobot"
ADMIN_CACHE_S = 60.0
Event = dict[str, Any]
Payload = dict[str, Any]


@dataclass
class SlackSettings:
    """What the adapter needs from the configuration (filled in by `bot`)."""

    signing_secret: str
    api_url: str = "https://slack.com/api/"
    bot_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    redirect_uri: str | None = None
    app_token: str | None = None
    admins: list[str] = field(default_factory=list)
    command_budget_s: float = 2.5  # of Slack's 3 s to answer a slash command in the ack
    # how long a comment waits for users.info to say whether an admin wrote it (within 3 s)
    admin_lookup_budget_s: float = 1.0
    scopes: list[str] = field(default_factory=lambda: list(BOT_SCOPES))

    @property
    def multi_workspace(self) -> bool:
        return bool(self.client_id and self.client_secret)


class CachedAuthorize(AsyncInstallationStoreAuthorize):
    """Bolt's installation-store authorize with its auth.test cache bounded in time (Bolt's
    own cache never expires) and cleared when a workspace revokes its tokens."""

    ttl_s = 300.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cached_at = time.monotonic()

    def clear(self) -> None:
        self.authorize_result_cache.clear()
        self._cached_at = time.monotonic()

    async def __call__(self, **kwargs: Any) -> Any:
        if time.monotonic() - self._cached_at > self.ttl_s:
            self.clear()
        return await super().__call__(**kwargs)


class DedupedApp(AsyncApp):
    """Bolt's AsyncApp that runs each Events API delivery once, whether it came over HTTP or
    Socket Mode: the event id is claimed before Bolt authorizes or dispatches it, confirmed
    once handled, and released when handling failed, so that Slack's retry runs. The dedup
    sends the confirmation in the background: until it lands the claim itself holds, and
    should it be lost the engine's unique message key still records the event once."""

    def __init__(self, *, dedup: Dedup, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dedup = dedup

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        event_id = inbound.event_id(req.body)
        if event_id is None:
            return await super().async_dispatch(req)
        if not await self.dedup.claim(event_id):
            log.info("delivery of %s already handled; acknowledged", event_id)
            return BoltResponse(status=200, body="", headers={"X-Slack-No-Retry": "1"})
        try:
            response = await super().async_dispatch(req)
        except BaseException:
            await self.dedup.release(event_id)
            raise
        if 200 <= response.status < 300:
            await self.dedup.confirm(event_id)  # sent in the background (RedisDedup)
        else:
            await self.dedup.release(event_id)
        return response


def tenant_of(context: AsyncBoltContext) -> TenantId:
    return inbound.tenant_id(context.team_id, context.enterprise_id)


async def ignore_event() -> None:
    """Events the app is subscribed to but doesn't act on: acknowledged, nothing done."""


async def ack_only(ack: AsyncAck) -> None:
    await ack()


async def _open_modal(client: AsyncWebClient, trigger_id: str, view: dict[str, Any]) -> None:
    """views.open; a trigger that expired (3 s) or was refused is logged, not an error."""
    try:
        await client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning("views.open failed: %s", error_code(exc))


async def on_listener_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
    """Bolt's error handler: 503 while the database can't record (Slack delivers the event
    again), else Bolt's 500, logged as Bolt logs it."""
    if storage_unavailable(error):
        log.warning("storage unavailable: Slack %s answered 503", body.get("type"))
        return BoltResponse(status=503, body="")
    log.error("a Slack listener failed", exc_info=error)
    return None


class SlackBot:
    """The Bolt app plus what its listeners share: the engine service, the adapter state,
    the admin cache and the background tasks started after an ack."""

    def __init__(
        self,
        settings: SlackSettings,
        service: EvobotService,
        state: SlackState,
        *,
        installation_store: AsyncInstallationStore | None = None,
        oauth_state_store: AsyncOAuthStateStore | None = None,
        tokens: TokenSource | None = None,
        dedup: Dedup | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.state = state
        self.tokens = tokens
        self.dedup = dedup or RedisDedup(state.redis, namespace=inbound.PLATFORM)
        self.fetcher = files.FileFetcher(settings.api_url)
        self.installation_store = installation_store
        self.authorize: CachedAuthorize | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._admins: dict[tuple[TenantId, str], tuple[float, bool]] = {}
        self.app = self._build_app(installation_store, oauth_state_store)
        self.revocation = (
            AsyncTokenRevocationListeners(installation_store) if installation_store else None
        )
        self.register()

    def register(self) -> None:
        """Which listener answers what (Bolt injects each one's arguments by name)."""
        app = self.app
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        app.event("reaction_added")(self.on_reaction_added)
        app.event("reaction_removed")(self.on_reaction_removed)
        app.event("tokens_revoked")(self.on_tokens_revoked)
        app.event("app_uninstalled")(self.on_app_uninstalled)
        app.action(inbound.RATE_ACTIONS)(self.on_rate)
        app.action(inbound.ACTION_COMMENT)(self.on_comment_button)
        app.view(inbound.COMMENT_VIEW)(self.on_comment_view)
        app.action(inbound.COMMAND_ACTIONS)(self.on_command_button)
        app.command(COMMAND)(self.on_command)
        # anything else Slack sends (other events, other actions): acknowledged, nothing done
        app.event(re.compile(r".*"))(ignore_event)
        app.action(re.compile(r".*"))(ack_only)
        app.error(on_listener_error)

    # --- construction -------------------------------------------------------------------

    def _build_app(self, installation_store: AsyncInstallationStore | None,
                   oauth_state_store: AsyncOAuthStateStore | None) -> AsyncApp:
        s = self.settings
        client = make_client(None if s.multi_workspace else s.bot_token, s.api_url)
        common: dict[str, Any] = {
            "name": "evobot",
            "signing_secret": s.signing_secret,
            "client": client,
            "process_before_response": True,
            # every HTTP request is verified before it reaches Bolt (adapters/slack/http.py);
            # Socket Mode requests carry no signature: checking again only costs time
            "request_verification_enabled": False,
            # Slack also delivers message.* events for edits and our own posts: ignored below
            "ignoring_self_events_enabled": True,
            "dedup": self.dedup,
        }
        if not s.multi_workspace:
            if not s.bot_token:
                raise ValueError("SLACK_BOT_TOKEN, or SLACK_CLIENT_ID + SLACK_CLIENT_SECRET")
            return DedupedApp(**common)
        if installation_store is None or oauth_state_store is None:
            raise ValueError("multi-workspace mode needs the installation and state stores")
        authorize = self.authorize = CachedAuthorize(
            logger=log, installation_store=installation_store, client_id=s.client_id,
            client_secret=s.client_secret, cache_enabled=True, client=client,
        )
        return DedupedApp(**common, installation_store=installation_store,
                          oauth_settings=self._oauth_settings(installation_store,
                                                              oauth_state_store),
                          authorize=authorize)

    def _oauth_settings(self, installation_store: AsyncInstallationStore,
                        oauth_state_store: AsyncOAuthStateStore) -> AsyncOAuthSettings:
        s = self.settings
        return AsyncOAuthSettings(
            client_id=s.client_id,
            client_secret=s.client_secret,
            scopes=s.scopes,
            user_scopes=[],
            redirect_uri=s.redirect_uri,
            install_path="/slack/install",
            redirect_uri_path="/slack/oauth_redirect",
            installation_store=installation_store,
            state_store=oauth_state_store,
        )

    # --- background work ------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, Any] | asyncio.Future[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Slack background task failed", exc_info=task.exception())

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Let background posts finish (shutdown, tests)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    # --- objectives -----------------------------------------------------------------------

    async def on_mention(self, event: Event, context: AsyncBoltContext) -> None:
        if not inbound.is_user_message(event):
            return
        message = inbound.mention_to_message(event, tenant_of(context), context.bot_user_id)
        await self._accept(message, event, context)

    async def on_message(self, event: Event, context: AsyncBoltContext,
                         client: AsyncWebClient) -> None:
        """A DM, a reply in one of the bot's threads, or the comment it invited."""
        bot_user = context.bot_user_id
        if not inbound.is_unmentioned_message(event, bot_user):
            return
        tenant = tenant_of(context)
        if await self._invited_comment(event, tenant, bot_user, client):
            return
        thread = inbound.thread_root(event)
        if inbound.is_direct_message(event) or (
            thread and await self.state.is_bot_thread(tenant, event["channel"], thread)
        ):
            await self._accept(inbound.message_to_message(event, tenant, bot_user), event,
                               context)

    async def _accept(self, message: InboundMessage, event: Event,
                      context: AsyncBoltContext) -> None:
        """Record the objective. One with files is recorded after the ack, once its files are
        downloaded (adapters/slack/files.py): Slack wants its 200 within 3 s."""
        shared = files.shared_files(event)
        if not shared:
            await self.service.handle_message(message)
            return
        self.spawn(self._with_files(message, shared, context.bot_token))

    async def _with_files(self, message: InboundMessage, shared: list[Payload],
                          token: str | None) -> None:
        attachments = await self.fetcher.fetch_all(shared, token)
        await self.service.handle_message(message.model_copy(update={"attachments": attachments}))

    async def _invited_comment(self, event: Event, tenant: TenantId, bot_user: str | None,
                               client: AsyncWebClient) -> bool:
        """Record the message as a comment if its author was invited to comment there."""
        channel, user, thread = event["channel"], event["user"], inbound.thread_root(event)
        execution_id = await self.state.take_comment_invitation(tenant, channel, thread, user)
        if execution_id is None:
            return False
        text = inbound.clean_text(event.get("text", ""), bot_user)
        feedback = inbound.comment_feedback(tenant, user, execution_id, text)
        result = await self.service.handle_feedback(await self._mark_admin(client, feedback))
        self.spawn(self.ephemeral(client, channel, user, outbound.comment_ack(result), thread))
        return True

    # --- ratings and comments -------------------------------------------------------------

    async def on_reaction_added(self, event: Event, context: AsyncBoltContext,
                                client: AsyncWebClient) -> None:
        await self._reaction(event, context, client, removed=False)

    async def on_reaction_removed(self, event: Event, context: AsyncBoltContext,
                                  client: AsyncWebClient) -> None:
        await self._reaction(event, context, client, removed=True)

    async def _reaction(self, event: Event, context: AsyncBoltContext, client: AsyncWebClient,
                        *, removed: bool) -> None:
        if not inbound.reacts_to_bot(event, context.bot_user_id):
            return
        tenant = tenant_of(context)
        feedback = inbound.reaction_to_feedback(event, tenant, removed=removed)
        if feedback is None or feedback.answer_ref is None:
            return
        result = await self.service.handle_feedback(feedback)
        if not result.recorded:
            return  # not one of our answers (an announcement, say): stay quiet
        ref = feedback.answer_ref
        thread = await self.state.answer_thread(tenant, ref.channel_id, ref.message_id) or None
        await self._vote_recorded(client, tenant, ref.channel_id, thread, feedback.user_id,
                                  result)

    async def on_rate(self, ack: AsyncAck, body: Payload, action: Payload,
                      context: AsyncBoltContext, client: AsyncWebClient) -> None:
        """👍 / 👎 or the 1–5 select under an answer."""
        await ack()
        tenant, user = tenant_of(context), body["user"]["id"]
        feedback = inbound.action_to_feedback(action, user, tenant)
        if feedback is None:
            return
        result = await self.service.handle_feedback(feedback)
        channel, thread = inbound.action_place(body)
        if not result.recorded or not channel:
            self.spawn(self.ephemeral(client, channel, user, result.message, thread))
            return
        await self._vote_recorded(client, tenant, channel, thread, user, result)

    async def _vote_recorded(self, client: AsyncWebClient, tenant: TenantId, channel: str,
                             thread_ts: str | None, user: str, result: FeedbackResult) -> None:
        """After a rating: if the engine asks for a comment, the user's next reply in the
        thread is taken as one; the vote is acknowledged privately."""
        if result.invite_comment and result.execution_id is not None:
            await self.state.invite_comment(tenant, channel, thread_ts, user, result.execution_id)
        self.spawn(self.ephemeral(client, channel, user, outbound.vote_ack(result), thread_ts))

    async def on_comment_button(self, ack: AsyncAck, body: Payload, action: Payload,
                                client: AsyncWebClient) -> None:
        await ack()
        target = inbound.comment_target(body, action)
        if target is None:
            return
        self.spawn(_open_modal(client, body["trigger_id"], outbound.comment_modal(target)))

    async def on_comment_view(self, ack: AsyncAck, body: Payload, view: Payload,
                              context: AsyncBoltContext, client: AsyncWebClient) -> None:
        tenant, user = tenant_of(context), body["user"]["id"]
        parsed = inbound.view_to_feedback(view, user, tenant)
        if parsed is None:
            await ack(response_action="errors", errors=outbound.COMMENT_MISSING)
            return
        await ack()
        feedback, target = parsed
        result = await self.service.handle_feedback(await self._mark_admin(client, feedback))
        self.spawn(self.ephemeral(client, target.channel_id, user, outbound.comment_ack(result),
                                  target.thread_ts))

    async def _mark_admin(self, client: AsyncWebClient,
                          feedback: InboundFeedback) -> InboundFeedback:
        """Say whether a comment comes from an admin (the engine lets their requests reach
        further); a rating alone needs no users.info call."""
        if not (feedback.comment or feedback.suggestion):
            return feedback
        admin = await self._admin_within_budget(client, feedback.tenant_id, feedback.user_id)
        return feedback.model_copy(update={"from_admin": admin})

    async def _admin_within_budget(self, client: AsyncWebClient, tenant: TenantId,
                                   user_id: str) -> bool:
        """is_admin, waiting at most the lookup budget so that Slack still gets its answer
        in time; a slow lookup finishes in the background (and fills the cache)."""
        lookup = asyncio.ensure_future(self.is_admin(client, tenant, user_id))
        done, _ = await asyncio.wait({lookup}, timeout=self.settings.admin_lookup_budget_s)
        if lookup in done:
            return lookup.result()
        log.warning("users.info for %s too slow; comment recorded as a member's", user_id)
        self.spawn(lookup)
        return False

    # --- commands ---------------------------------------------------------------------------

    async def on_command(self, ack: AsyncAck, body: Payload, context: AsyncBoltContext,
                         client: AsyncWebClient, respond: AsyncRespond) -> None:
        """`/evobot …`: answered in the ack when it takes under the budget, else later
        through response_url."""
        command = inbound.command_to_inbound(body, tenant_of(context))
        task = asyncio.ensure_future(self._run_command(client, command))
        done, _ = await asyncio.wait({task}, timeout=self.settings.command_budget_s)
        if task in done:
            await ack(**await self._command_response(task, command.name))
            return
        await ack(**outbound.command_pending(command.name))
        self.spawn(self._respond_later(task, command.name, respond))

    async def _command_response(self, task: asyncio.Future[CommandReply],
                                name: str) -> Payload:
        try:
            return outbound.command_response(await task)
        except Exception as exc:
            log.exception("/evobot %s failed", name)
            return outbound.command_failed(name, exc)

    async def _respond_later(self, task: asyncio.Future[CommandReply], name: str,
                             respond: AsyncRespond) -> None:
        await respond(replace_original=True, **await self._command_response(task, name))

    async def on_command_button(self, ack: AsyncAck, body: Payload, action: Payload,
                                context: AsyncBoltContext, client: AsyncWebClient) -> None:
        """Roll back / Apply / Dismiss under an announcement: the reply comes privately."""
        await ack()
        channel, _ = inbound.action_place(body)
        command = inbound.button_to_command(action, body["user"]["id"], channel,
                                            tenant_of(context))
        if command is not None:
            self.spawn(self._command_button(client, command))

    async def _command_button(self, client: AsyncWebClient, command: InboundCommand) -> None:
        message = outbound.document_message((await self._run_command(client, command)).document)
        await self.ephemeral(client, command.channel_id, command.user_id, message.text,
                             blocks=message.blocks)

    async def _run_command(self, client: AsyncWebClient, command: InboundCommand
                           ) -> CommandReply:
        """Run a command, asking Slack whether the caller is an admin only when the registry
        says this call needs it (engine.commands.needs_admin)."""
        if needs_admin(command):
            admin = await self.is_admin(client, command.tenant_id, command.user_id)
            command = command.model_copy(update={"is_admin": admin})
        return await self.service.handle_command(command)

    async def is_admin(self, client: AsyncWebClient, tenant: TenantId, user_id: str) -> bool:
        """EVOBOT_ADMINS, or a workspace admin/owner according to users.info (cached 60 s)."""
        if user_id in self.settings.admins:
            return True
        cached = self._admins.get((tenant, user_id))
        if cached is not None and time.monotonic() - cached[0] < ADMIN_CACHE_S:
            return cached[1]
        try:
            response = await client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("users.info for %s failed: %s", user_id, error_code(exc))
            return False
        user = response.get("user") or {}
        admin = bool(user.get("is_admin") or user.get("is_owner")
                     or user.get("is_primary_owner"))
        now = time.monotonic()
        # expired answers go as new ones come: an idle workspace's users cost nothing
        for key in [k for k, (at, _) in self._admins.items() if now - at >= ADMIN_CACHE_S]:
            del self._admins[key]
        self._admins[(tenant, user_id)] = (now, admin)
        return admin

    async def ephemeral(self, client: AsyncWebClient, channel: str | None, user: str,
                        text: str, thread_ts: str | None = None,
                        blocks: list[dict[str, Any]] | None = None) -> None:
        if not channel:
            return
        kwargs: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            await client.chat_postEphemeral(**kwargs)
        except SlackApiError as exc:
            log.warning("chat.postEphemeral failed: %s", error_code(exc))

    # --- installations ----------------------------------------------------------------------

    async def on_tokens_revoked(self, event: Event, context: AsyncBoltContext) -> None:
        await self._revoked(event, context, uninstalled=False)

    async def on_app_uninstalled(self, event: Event, context: AsyncBoltContext) -> None:
        await self._revoked(event, context, uninstalled=True)

    async def _revoked(self, event: Event, context: AsyncBoltContext, *,
                       uninstalled: bool) -> None:
        tenant = tenant_of(context)
        if self.revocation is not None:
            if uninstalled:
                await self.revocation.handle_app_uninstalled_events(context)
            else:
                await self.revocation.handle_tokens_revoked_events(event, context)
        if self.tokens is not None:
            self.tokens.forget(tenant)
        if self.authorize is not None:
            self.authorize.clear()
        log.warning("%s for %s: its installation is removed; the agent's history is kept",
                    "app_uninstalled" if uninstalled else "tokens_revoked", tenant)
