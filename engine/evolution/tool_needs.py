"""Hand the learnings that ask for a tool (or a tool's removal) to the tool maker."""

from __future__ import annotations

import logging

from engine.evolution.attempt import Attempt
from engine.runtime import Runtime

log = logging.getLogger(__name__)

TOOL_LEARNINGS = ("tool_need", "workflow_need", "tool_removal")


async def hand_tool_needs(rt: Runtime, attempt: Attempt) -> None:
    """One tool maker call per need; a failing one is logged and the others still run."""
    for learning in attempt.learnings:
        if learning.type not in TOOL_LEARNINGS:
            continue
        try:
            await rt.tool_maker(rt, attempt.tenant_id, attempt.evolution_id, learning)
        except Exception:
            log.exception("tool maker failed for %s", learning.issue)
