"""Exporting an agent as one portable file (engine/portable.py): every version with its
structured prompt and labels, the tools with their code and tests (sub-agents and workflows
are tools), and the workspace's validated learnings.

Users' words stay home unless an admin asks (`with_feedback`) and the workspace's privacy mode
lets anything leave it (federated or collective): then the ratings with their comments (never
who gave them) and the success patterns (which quote objectives and answers) go too.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from engine.knowledge.anonymize import anonymize
from engine.portable import (
    AgentExport,
    PortableFeedback,
    PortableLearning,
    PortableTool,
    PortableVersion,
)
from engine.runtime import Runtime
from engine.storage.models import Tool, utcnow
from engine.storage.repo import ACTIVE, CANARY, TenantRepo
from engine.tools.registry import REJECTED
from engine.types import PrivacyMode, SandboxFile, TenantId

log = logging.getLogger(__name__)

SUCCESS_PATTERN = "success_pattern"  # engine/evolution/knowledge.py: quotes users' objectives
ALL_VERSIONS = 5000


class FeedbackStaysHome(Exception):
    """Feedback was asked for, but the workspace's privacy mode keeps it in the workspace."""


@dataclass(frozen=True)
class Exported:
    agent: AgentExport
    notes: list[str] = field(default_factory=list)

    def file(self) -> SandboxFile:
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", self.agent.source).strip("-")
        return SandboxFile(
            name=f"evobot-agent-{slug}-v{self.agent.active_version}.json",
            media_type="application/json",
            data=self.agent.model_dump_json(indent=2).encode(),
        )

    def caption(self) -> str:
        agent = self.agent
        words = ("users' feedback included" if agent.feedback is not None
                 else "users' feedback left out")
        parts = [f"Agent v{agent.active_version}: {len(agent.versions)} versions, "
                 f"{len(agent.tools)} tools, {len(agent.learnings)} learnings ({words})",
                 *self.notes]
        return ". ".join(parts) + ". Import it elsewhere with `evobot agent import` or the API."


async def export_agent(
    rt: Runtime, tenant_id: TenantId, *, with_feedback: bool = False
) -> Exported:
    """The tenant's agent as a portable file. Raises FeedbackStaysHome, LookupError."""
    async with rt.repo(tenant_id) as repo:
        tenant = await repo.tenant()
        if tenant is None:
            raise LookupError(f"no agent for {tenant_id}")
        if with_feedback and tenant.privacy_mode == PrivacyMode.ISOLATED:
            raise FeedbackStaysHome(
                "this workspace's privacy mode is isolated: users' feedback never leaves it. "
                "Export without `with-feedback`, or change `privacy` first."
            )
        versions = await _versions(repo)
        tools = [_tool(t) for t in await repo.tools() if t.status != REJECTED]
        feedback = await _feedback(repo) if with_feedback else None
        active = await repo.label(ACTIVE)
    learnings, notes = await _learnings(rt, tenant_id, with_feedback=with_feedback)
    agent = AgentExport(
        exported_at=utcnow(), source=tenant_id, active_version=active or 1, versions=versions,
        tools=tools, learnings=learnings, feedback=feedback,
    )
    return Exported(agent, notes)


async def _versions(repo: TenantRepo) -> list[PortableVersion]:
    labels = {"active": await repo.label(ACTIVE), "canary": await repo.label(CANARY)}
    return [
        PortableVersion(
            version=v.version, prompt=v.prompt, model=v.model, temperature=v.temperature,
            tools=v.tools, parent_version=v.parent_version, created_by=v.created_by,
            rationale=v.rationale, created_at=v.created_at,
            labels=[name for name, number in labels.items() if number == v.version],
        )
        for v in reversed(await repo.versions(ALL_VERSIONS))
    ]


def _tool(row: Tool) -> PortableTool:
    return PortableTool(
        name=row.name, version=row.version, kind=row.kind,
        description=row.description, parameters=row.parameters, source=row.source,
        tests=row.tests, status=row.status, pinned=row.pinned,
    )


async def _feedback(repo: TenantRepo) -> list[PortableFeedback]:
    """Ratings and their words, anonymized (emails, phone numbers, mentions go)."""
    return [
        PortableFeedback(
            version=version, rating=row.rating, category=row.category,
            comment=anonymize(row.comment) if row.comment else None,
            suggestion=anonymize(row.suggestion) if row.suggestion else None,
        )
        for row, version in await repo.live_feedback_with_versions()
    ]


async def _learnings(
    rt: Runtime, tenant_id: TenantId, *, with_feedback: bool
) -> tuple[list[PortableLearning], list[str]]:
    try:
        stored = (await rt.knowledge.export_tenant(tenant_id)).get("learnings", [])
    except Exception as exc:  # the store is an aid: the agent itself still exports
        log.exception("reading learnings for an export failed")
        return [], [f"learnings could not be read ({type(exc).__name__})"]
    learnings = []
    for entry in stored:
        meta = entry.get("metadata") or {}
        kind = str(meta.get("type", "prompt_rule"))
        if kind == SUCCESS_PATTERN and not with_feedback:
            continue
        learnings.append(PortableLearning(
            text=str(entry["text"]), type=kind, domain=str(meta.get("domain", "general")),
            confidence=float(meta.get("confidence", 0.5)), impact=float(meta.get("impact", 0.5)),
        ))
    return learnings, []
