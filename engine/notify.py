"""Notifier routing by platform: each event goes to the notifier of its tenant's platform."""

from __future__ import annotations

import logging

from engine.ports import Notifier
from engine.types import Delivery, OutboundEvent, tenant_platform

log = logging.getLogger(__name__)


class NotifierRouter:
    """Sends each event to the notifier registered for its tenant's platform."""

    def __init__(self, notifiers: dict[str, Notifier] | None = None) -> None:
        self._notifiers: dict[str, Notifier] = dict(notifiers or {})

    def register(self, platform: str, notifier: Notifier) -> None:
        self._notifiers[platform] = notifier

    async def deliver(self, event: OutboundEvent) -> Delivery:
        notifier = self._notifiers.get(tenant_platform(event.tenant_id))
        if notifier is None:
            log.warning("no notifier for %s; dropped %s", event.tenant_id, event.type)
            return Delivery()
        try:
            return await notifier.deliver(event)
        except Exception:  # a platform outage must not fail the job that produced the event
            log.exception("delivering %s to %s failed", event.type, event.tenant_id)
            return Delivery(failed=True)
