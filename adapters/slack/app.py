"""The Bolt AsyncApp: Slack events, buttons, the comment modal and `/evobot` → the engine.

`process_before_response=True`: every listener finishes its database work (record the
execution or the rating, enqueue the job) before Slack gets its 200, so an acknowledged
event is never lost; listeners only do fast work (a row, a Redis call) inside the ack, and
anything that talks to the Web API runs afterwards as a background task. Slash commands
answer within the 3-second window when they can, and through `response_url` when they can't.
Retried deliveries are dropped by event id (see `adapters.slack.http` and `dedup_middleware`),
and the engine's unique (channel, message) key stops one post from becoming two executions.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.listener.async_builtins import AsyncTokenRevocationListeners
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import convert
from adapters.slack.notifier import error_code, make_client
from adapters.slack.state import SlackState
from adapters.slack.tokens import TokenSource
from engine.commands import needs_admin
from engine.service import EvobotService
from engine.types import CommandReply, FeedbackResult, InboundCommand, TenantId

log = logging.getLogger(__name__)

BOT_SCOPES = [
    "app_mentions:read", "channels:history", "groups:history", "im:history", "mpim:history",
    "im:write", "chat:write", "commands", "reactions:read", "reactions:write", "users:read",
]
COMMAND = "/evobot"
ADMIN_CACHE_S = 60.0


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


def tenant_of(context: AsyncBoltContext) -> TenantId:
    return convert.tenant_id(context.team_id, context.enterprise_id)


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
    ) -> None:
        self.settings = settings
        self.service = service
        self.state = state
        self.tokens = tokens
        self.installation_store = installation_store
        self.authorize: CachedAuthorize | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._admins: dict[tuple[TenantId, str], tuple[float, bool]] = {}
        self.app = self._build_app(installation_store, oauth_state_store)
        self.revocation = (
            AsyncTokenRevocationListeners(installation_store) if installation_store else None
        )
        self.app.use(dedup_middleware(state))
        self.register()

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
            # Slack also delivers message.* events for edits and our own posts: ignored below
            "ignoring_self_events_enabled": True,
        }
        if not s.multi_workspace:
            if not s.bot_token:
                raise ValueError("SLACK_BOT_TOKEN, or SLACK_CLIENT_ID + SLACK_CLIENT_SECRET")
            return AsyncApp(**common)
        if installation_store is None or oauth_state_store is None:
            raise ValueError("multi-workspace mode needs the installation and state stores")
        oauth = AsyncOAuthSettings(
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
        authorize = self.authorize = CachedAuthorize(
            logger=log, installation_store=installation_store, client_id=s.client_id,
            client_secret=s.client_secret, cache_enabled=True, client=client,
        )
        return AsyncApp(**common, installation_store=installation_store, oauth_settings=oauth,
                        authorize=authorize)

    # --- background work ------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
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

    # --- helpers ------------------------------------------------------------------------

    async def is_admin(self, client: AsyncWebClient, tenant: TenantId, user_id: str) -> bool:
        """EVOBOT_ADMINS, or a workspace admin/owner according to users.info (cached 60 s)."""
        if user_id in self.settings.admins:
            return True
        cached = self._admins.get((tenant, user_id))
        if cached is not None and time.monotonic() - cached[0] < ADMIN_CACHE_S:
            return cached[1]
        try:
            response = await client.users_info(user=user_id)
            user = response.get("user") or {}
            admin = bool(user.get("is_admin") or user.get("is_owner")
                         or user.get("is_primary_owner"))
        except SlackApiError as exc:
            log.warning("users.info for %s failed: %s", user_id, error_code(exc))
            return False
        self._admins[(tenant, user_id)] = (time.monotonic(), admin)
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

    async def _vote_recorded(self, client: AsyncWebClient, tenant: TenantId, channel: str,
                             thread_ts: str | None, user: str, result: FeedbackResult,
                             *, invite: bool) -> None:
        """After a rating: invite a comment (a reply in the thread) and ack privately."""
        if invite and result.execution_id is not None:
            await self.state.invite_comment(tenant, channel, thread_ts, user, result.execution_id)
        self.spawn(self.ephemeral(client, channel, user,
                                  convert.feedback_ack(result, invite_comment=invite), thread_ts))

    async def _run_command(self, client: AsyncWebClient, tenant: TenantId, user: str,
                           name: str, make: Callable[[bool], InboundCommand]) -> CommandReply:
        command = make(False)
        if needs_admin(command):
            command = make(await self.is_admin(client, tenant, user))
        return await self.service.handle_command(command)

    @staticmethod
    def reply_payload(reply: CommandReply) -> dict[str, Any]:
        return {
            "text": convert.truncate(reply.document.summary, 3000),
            "blocks": convert.document_blocks(reply.document),
            "response_type": "ephemeral" if reply.private else "in_channel",
        }

    # --- listeners ------------------------------------------------------------------------

    def register(self) -> None:
        app, service, state = self.app, self.service, self.state

        @app.event("app_mention")
        async def on_mention(event: dict[str, Any], context: AsyncBoltContext) -> None:
            if not convert.is_user_message(event):
                return
            message = convert.mention_to_message(event, tenant_of(context), context.bot_user_id)
            await service.handle_message(message)

        @app.event("message")
        async def on_message(event: dict[str, Any], context: AsyncBoltContext,
                             client: AsyncWebClient) -> None:
            if not convert.is_user_message(event):
                return  # edits, deletes, joins, bots (ourselves included)
            bot_user = context.bot_user_id
            direct = convert.is_direct_message(event)
            if not direct and convert.mentions(event.get("text", ""), bot_user):
                return  # the app_mention event for the same post answers it
            tenant, channel, user = tenant_of(context), event["channel"], event["user"]
            thread = convert.thread_root(event)
            text = convert.clean_text(event.get("text", ""), bot_user)
            if not text:
                return
            execution_id = await state.take_comment_invitation(tenant, channel, thread, user)
            if execution_id is not None:
                result = await service.handle_feedback(
                    convert.comment_feedback(tenant, user, execution_id, text)
                )
                self.spawn(self.ephemeral(client, channel, user,
                                          convert.feedback_ack(result, invite_comment=False),
                                          thread))
                return
            if direct or (thread and await state.is_bot_thread(tenant, channel, thread)):
                await service.handle_message(convert.message_to_message(event, tenant, bot_user))

        async def on_reaction(event: dict[str, Any], context: AsyncBoltContext,
                              client: AsyncWebClient, *, removed: bool) -> None:
            item_user = event.get("item_user")
            if item_user and context.bot_user_id and item_user != context.bot_user_id:
                return  # a reaction on somebody else's message
            tenant = tenant_of(context)
            feedback = convert.reaction_to_feedback(event, tenant, removed=removed)
            if feedback is None or feedback.answer_ref is None:
                return
            result = await service.handle_feedback(feedback)
            if not result.recorded:
                return  # not one of our answers (an announcement, say): stay quiet
            ref = feedback.answer_ref
            thread = await state.answer_thread(tenant, ref.channel_id, ref.message_id) or None
            invite = not removed and result.rating is not None and result.rating <= 3
            await self._vote_recorded(client, tenant, ref.channel_id, thread, feedback.user_id,
                                      result, invite=invite)

        @app.event("reaction_added")
        async def on_reaction_added(event: dict[str, Any], context: AsyncBoltContext,
                                    client: AsyncWebClient) -> None:
            await on_reaction(event, context, client, removed=False)

        @app.event("reaction_removed")
        async def on_reaction_removed(event: dict[str, Any], context: AsyncBoltContext,
                                      client: AsyncWebClient) -> None:
            await on_reaction(event, context, client, removed=True)

        @app.event("tokens_revoked")
        async def on_tokens_revoked(event: dict[str, Any], context: AsyncBoltContext) -> None:
            await self._revoked(event, context, uninstalled=False)

        @app.event("app_uninstalled")
        async def on_app_uninstalled(event: dict[str, Any], context: AsyncBoltContext) -> None:
            await self._revoked(event, context, uninstalled=True)

        @app.action(re.compile(r"^evobot:rate:(up|down|select)$"))
        async def on_rate(ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                          action: dict[str, Any], context: AsyncBoltContext,
                          client: AsyncWebClient) -> None:
            await ack()
            tenant, user = tenant_of(context), body["user"]["id"]
            feedback = convert.action_to_feedback(action, user, tenant)
            if feedback is None:
                return
            result = await service.handle_feedback(feedback)
            channel = (body.get("channel") or {}).get("id")
            message = body.get("message") or {}
            thread = message.get("thread_ts") or None
            if not result.recorded or not channel:
                self.spawn(self.ephemeral(client, channel, user, result.message, thread))
                return
            invite = result.rating is not None and result.rating <= 3
            await self._vote_recorded(client, tenant, channel, thread, user, result,
                                      invite=invite)

        @app.action(convert.ACTION_COMMENT)
        async def on_comment_button(ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                                    action: dict[str, Any], client: AsyncWebClient) -> None:
            await ack()
            try:
                execution_id = int(action.get("value", ""))
            except ValueError:
                return
            message = body.get("message") or {}
            target = convert.CommentTarget(execution_id, (body.get("channel") or {}).get("id"),
                                           message.get("thread_ts"))
            self.spawn(client.views_open(trigger_id=body["trigger_id"],
                                         view=convert.comment_modal(target)))

        @app.view(convert.COMMENT_VIEW)
        async def on_comment_view(ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                                  view: dict[str, Any], context: AsyncBoltContext,
                                  client: AsyncWebClient) -> None:
            tenant, user = tenant_of(context), body["user"]["id"]
            parsed = convert.view_to_feedback(view, user, tenant)
            if parsed is None:
                await ack(response_action="errors",
                          errors={"comment": "Write a comment (or pick a rating)."})
                return
            await ack()
            feedback, target = parsed
            result = await service.handle_feedback(feedback)
            text = convert.feedback_ack(result, invite_comment=False)
            self.spawn(self.ephemeral(client, target.channel_id, user, text, target.thread_ts))

        @app.action(re.compile(r"^evobot:cmd:"))
        async def on_command_button(ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                                    action: dict[str, Any], context: AsyncBoltContext,
                                    client: AsyncWebClient) -> None:
            await ack()
            tenant, user = tenant_of(context), body["user"]["id"]
            channel = (body.get("channel") or {}).get("id")
            name = str(action.get("action_id", "")).removeprefix(convert.ACTION_COMMAND_PREFIX)

            def make(is_admin: bool) -> InboundCommand:
                command = convert.button_to_command(action, user, channel, tenant,
                                                    is_admin=is_admin)
                assert command is not None
                return command

            async def run() -> None:
                reply = await self._run_command(client, tenant, user, name, make)
                payload = self.reply_payload(reply)
                await self.ephemeral(client, channel, user, payload["text"],
                                     blocks=payload["blocks"])

            self.spawn(run())

        @app.command(COMMAND)
        async def on_command(ack: Callable[..., Awaitable[Any]], body: dict[str, Any],
                             context: AsyncBoltContext, client: AsyncWebClient,
                             respond: Callable[..., Awaitable[Any]]) -> None:
            tenant, user = tenant_of(context), str(body.get("user_id", ""))
            name, _ = convert.parse_command_text(str(body.get("text", "")))

            def make(is_admin: bool) -> InboundCommand:
                return convert.command_to_inbound(body, tenant, is_admin=is_admin)

            task = asyncio.ensure_future(self._run_command(client, tenant, user, name, make))
            done, _ = await asyncio.wait({task}, timeout=self.settings.command_budget_s)
            if task in done:
                try:
                    await ack(**self.reply_payload(task.result()))
                except Exception as exc:
                    log.exception("/evobot %s failed", name)
                    await ack(text=f"Sorry — `{name}` failed: {exc}", response_type="ephemeral")
                return
            await ack(text=f"Working on `{name}`…", response_type="ephemeral")

            async def finish() -> None:
                try:
                    payload = self.reply_payload(await task)
                except Exception as exc:
                    log.exception("/evobot %s failed", name)
                    payload = {"text": f"Sorry — `{name}` failed: {exc}",
                               "response_type": "ephemeral"}
                await respond(replace_original=True, **payload)

            self.spawn(finish())

        # Anything else Slack sends (other events, other actions): acknowledge, do nothing.
        @app.event(re.compile(r".*"))
        async def on_other_event() -> None:
            return None

        @app.action(re.compile(r".*"))
        async def on_other_action(ack: Callable[..., Awaitable[Any]]) -> None:
            await ack()

    async def _revoked(self, event: dict[str, Any], context: AsyncBoltContext, *,
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


def dedup_middleware(state: SlackState) -> Callable[..., Awaitable[BoltResponse | None]]:
    """Bolt global middleware: one execution per event id (Socket Mode has no HTTP layer to
    do it; the HTTP handler marks the requests it already checked)."""

    async def middleware(body: dict[str, Any], context: AsyncBoltContext,
                         next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        event_id = body.get("event_id") if isinstance(body, dict) else None
        if (
            event_id
            and not context.get("evobot_dedup_done")
            and not await state.first_delivery(str(event_id))
        ):
            log.info("duplicate delivery of %s ignored", event_id)
            return BoltResponse(status=200, body="")
        await next()
        return None

    return middleware
