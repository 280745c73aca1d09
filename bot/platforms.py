"""Which platform notifiers a process has, from the configuration; and the Slack wiring."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config import Config
from engine.notify import NotifierRouter
from engine.ports import Notifier

if TYPE_CHECKING:
    from adapters.slack.app import SlackBot, SlackSettings
    from adapters.slack.notifier import SlackNotifier
    from adapters.slack.tokens import TokenSource
    from bot.observability import ObservedService
    from bot.wiring import RedisHandle
    from engine.runtime import Runtime
    from engine.service import EvobotService


def make_notifier(config: Config) -> NotifierRouter:
    """A router with a notifier for every platform that is configured, each beside the event
    feed (the REST API's answers and streams) and observed (metrics); `api` agents live on
    the feed alone."""
    from adapters.api.events import EventFeed, WithFeed
    from bot.observability import ObservedNotifier
    from bot.wiring import connect_redis

    router = NotifierRouter()
    feed = EventFeed(connect_redis(config).asyncio_client())

    def register(platform: str, notifier: Notifier | None) -> None:
        router.register(platform, ObservedNotifier(WithFeed(notifier, feed)))

    if config.slack_bot_token or (config.slack_client_id and config.slack_client_secret):
        register("slack", make_slack_notifier(config))
    if config.telegram_bot_token:
        from adapters.telegram.notifier import TelegramNotifier

        # pacing per chat is shared with every other process through Redis
        redis = connect_redis(config).asyncio_client()
        register("telegram", TelegramNotifier.from_config(config, redis))
    register("api", None)
    return router


def observed_service(runtime: Runtime, redis: RedisHandle) -> ObservedService:
    """The engine's service for a platform process: counted (metrics), and its `queued` and
    `feedback` published on the event feed (the REST API's streams)."""
    from adapters.api.events import EventFeed
    from bot.observability import ObservedService

    return ObservedService(runtime, [EventFeed(redis.asyncio_client())])


# --- Slack ---------------------------------------------------------------------------------


def slack_settings(config: Config) -> SlackSettings:
    from adapters.slack.app import SlackSettings

    return SlackSettings(
        signing_secret=config.slack_signing_secret or "",
        api_url=config.slack_api_url,
        bot_token=config.slack_bot_token,
        client_id=config.slack_client_id,
        client_secret=config.slack_client_secret,
        redirect_uri=config.slack_redirect_uri,
        app_token=config.slack_app_token,
        admins=config.admins,
    )


def slack_tokens(config: Config) -> TokenSource:
    """SLACK_BOT_TOKEN, or the OAuth installation store (built lazily, in the loop that uses
    it — the worker's job loop or the web server's loop)."""
    from adapters.slack import tokens

    if config.slack_client_id and config.slack_client_secret:
        client_id = config.slack_client_id

        async def make() -> tokens.TokenSource:
            from engine.storage.db import create_engine

            engine = create_engine(config.resolved_database_url)
            return tokens.InstallationTokens(await tokens.installation_store(engine, client_id))

        return tokens.LazyTokens(make)
    assert config.slack_bot_token
    return tokens.StaticToken(config.slack_bot_token)


def make_slack_notifier(config: Config) -> SlackNotifier:
    from adapters.slack.notifier import SlackNotifier
    from adapters.slack.state import SlackState
    from bot.wiring import connect_redis

    return SlackNotifier(
        tokens=slack_tokens(config),
        api_url=config.slack_api_url,
        state=SlackState(connect_redis(config).asyncio_client()),
        pace_s=config.slack_channel_pace_s,
    )


async def build_slack_bot(
    config: Config, service: EvobotService, redis: RedisHandle
) -> SlackBot:
    """The Bolt app with its stores: OAuth installs (multi-workspace) keep installations and
    OAuth states in the project database through slack_sdk's async SQLAlchemy stores."""
    from adapters.slack import tokens
    from adapters.slack.app import SlackBot
    from adapters.slack.state import SlackState

    settings = slack_settings(config)
    state = SlackState(redis.asyncio_client())
    if not settings.multi_workspace:
        return SlackBot(settings, service, state, tokens=slack_tokens(config))
    db_engine = service.rt.database
    assert settings.client_id
    installations = await tokens.installation_store(db_engine, settings.client_id)
    states = await tokens.oauth_state_store(db_engine)
    return SlackBot(
        settings, service, state, installation_store=installations, oauth_state_store=states,
        tokens=tokens.InstallationTokens(installations),
    )
