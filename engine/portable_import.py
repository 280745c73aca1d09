"""Importing an agent file: ONE new version of the target agent — its history is kept, and
the existing rollback undoes the import.

1. read the file strictly (engine/portable.py: size cap, JSON, format version, schema);
2. refuse a hostile file whole: injection, secrets or an over-budget prompt
   (engine/evolution/checks.py), injection in tool texts, tool code the sandbox's static check
   forbids;
3. re-test every tool of the file's active version, as the tool maker does (functions: their
   tests in the sandbox; sub-agents: a trial run; workflows: their examples); a failing tool
   is left out of the new version and reported;
4. one transaction: the tools, an evolution row with trigger `import`, the new version
   promoted with the optimistic label check (a canary of the old agent is dropped);
5. the learnings join the knowledge store under the target's own privacy mode, and the new
   version is announced with its diff and a Roll back button, like an evolution.
The agent keeps running on the target workspace's model; the file's model is reported.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from engine.evolution.attempt import Trigger
from engine.evolution.checks import structural_problems, text_problems
from engine.evolution.lock import tenant_evolution_lock
from engine.knowledge.records import NewLearning
from engine.portable import AgentExport, ImportRefused, PortableLearning, PortableTool, parse_export
from engine.present import evolution_document
from engine.prompt import unified_diff
from engine.runtime import Runtime
from engine.sandbox import DEFAULT_ALLOWED_MODULES, check_tool_source
from engine.storage.models import Tool, utcnow
from engine.storage.repo import ACTIVE, CANARY, StaleLabel, TenantRepo
from engine.tools.box import FUNCTION, SUBAGENT, ToolSpec
from engine.tools.maker import ToolDraft, trial
from engine.tools.registry import ACTIVE_STATUS, next_version, ref
from engine.tools.subagent import parse_spec
from engine.tools.workflow import parse_workflow
from engine.types import (
    Decision,
    EvolutionAnnounced,
    EvolutionStatus,
    StructuredPrompt,
    TenantId,
)

log = logging.getLogger(__name__)

KIND_ORDER = {FUNCTION: 0, SUBAGENT: 1}  # then workflows: each may call the ones before


@dataclass(frozen=True)
class ToolVerdict:
    tool: PortableTool
    draft: ToolDraft | None
    passed: int = 0  # tests / examples / trial runs that passed
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.draft is not None and not self.problem

    def line(self) -> str:
        if self.ok:
            return f"{self.tool.name} ({self.passed} passed)"
        return f"{self.tool.name} ({self.problem.splitlines()[0][:160]})"


@dataclass
class Imported:
    """What an import did (the command's reply and the announcement say it)."""

    source: str
    from_version: int = 0
    to_version: int = 0
    evolution_id: int = 0
    tools: list[ToolVerdict] = field(default_factory=list)
    learnings: int = 0

    @property
    def kept(self) -> list[str]:
        return [v.line() for v in self.tools if v.ok]

    @property
    def left_out(self) -> list[str]:
        return [v.line() for v in self.tools if not v.ok]

    def details(self) -> str:
        parts = [f"imported from {self.source}",
                 "tools re-tested: " + (", ".join(self.kept) or "none")]
        if self.left_out:
            parts.append("left out: " + "; ".join(self.left_out))
        parts += [f"{self.learnings} learnings", f"trigger: {Trigger.IMPORT}"]
        return " · ".join(parts)


async def import_agent(
    rt: Runtime, tenant_id: TenantId, data: bytes, *, actor: str, channel_id: str | None
) -> Imported:
    """The file as a new active version of `tenant_id`'s agent; ImportRefused changes nothing."""
    agent = parse_export(data)
    prompt = _portable_prompt(agent)
    refuse_hostile(prompt, agent.active_tools())
    verdicts = await _retest(rt, tenant_id, agent.active_tools())
    async with tenant_evolution_lock(rt, tenant_id) as acquired:
        if not acquired:
            raise ImportRefused("an evolution of this agent is running; try again in a minute")
        try:
            imported = await _apply(rt, tenant_id, agent, prompt, verdicts, actor, channel_id)
        except StaleLabel as exc:
            raise ImportRefused(f"the agent changed meanwhile ({exc}); try again") from exc
    imported.learnings = await _learn(rt, tenant_id, agent.learnings)
    await _announce(rt, tenant_id, imported, channel_id)
    return imported


def _portable_prompt(agent: AgentExport) -> StructuredPrompt:
    """The active version's prompt; rules lose their provenance (another workspace's ids)."""
    prompt = agent.active().prompt.model_copy(deep=True)
    for rule in prompt.rules:
        rule.provenance = []
    return prompt


def refuse_hostile(prompt: StructuredPrompt, tools: list[PortableTool]) -> None:
    """The checks an evolution's candidate passes, on everything the file would bring in."""
    problems = structural_problems(StructuredPrompt(persona=""), prompt)
    problems += [f"tool notes: {p}" for p in text_problems(prompt.tool_notes)]
    for tool in tools:
        problems += [f"tool {tool.name}: {p}" for p in _tool_hazards(tool)]
    if problems:
        raise ImportRefused("the file was refused as unsafe:\n" + "\n".join(problems[:10]))


def _tool_hazards(tool: PortableTool) -> list[str]:
    """Injection in what the model will read, and code the sandbox's static check forbids
    (a syntax error is a broken tool, left out later, not a hostile one)."""
    problems = [p for text in [tool.description, *_instruction_texts(tool)]
                for p in text_problems(text)]
    if tool.kind == FUNCTION:
        for label, code in (("source", tool.source), ("tests", tool.tests)):
            found = check_tool_source(code, allowed_imports=DEFAULT_ALLOWED_MODULES)
            problems += [f"{label}: {p}" for p in found if not p.startswith("syntax error")]
    return problems


def _instruction_texts(tool: PortableTool) -> list[str]:
    try:
        if tool.kind == SUBAGENT:
            spec = parse_spec(tool.source)
            return [spec.prompt.persona, spec.prompt.tool_notes,
                    *(r.text for r in spec.prompt.rules)]
        if tool.kind == "workflow":
            return [s.prompt or s.task for s in parse_workflow(tool.source).steps]
    except ValueError:
        return []  # not parseable: left out as broken when re-tested
    return []


def _draft(tool: PortableTool) -> ToolDraft:
    """The tool as the maker's draft, so it is checked and tested exactly like a new one."""
    fields = {"kind": tool.kind, "name": tool.name, "description": tool.description,
              "parameters": tool.parameters}
    if tool.kind == SUBAGENT:
        spec = parse_spec(tool.source)
        return ToolDraft.model_validate({
            **fields, "persona": spec.prompt.persona, "rules": [r.text for r in spec.prompt.rules],
            "tools": spec.tools, "example_task": tool.tests,
        })
    if tool.kind == "workflow":
        steps = json.loads(tool.source)
        return ToolDraft.model_validate({
            **fields, "steps": steps.get("steps"), "result": steps.get("result", ""),
            "trial_inputs": json.loads(tool.tests or "[]"),
        })
    return ToolDraft.model_validate({**fields, "source": tool.source, "tests": tool.tests})


async def _retest(rt: Runtime, tenant_id: TenantId, tools: list[PortableTool]
                  ) -> list[ToolVerdict]:
    """Functions first, then sub-agents, then workflows: each checked against the tools
    that passed before it (a workflow can't call a tool that was left out)."""
    verdicts: list[ToolVerdict] = []
    passing: list[ToolSpec] = []
    for tool in sorted(tools, key=lambda t: KIND_ORDER.get(t.kind, 2)):
        try:
            draft = _draft(tool)
        except (ValueError, TypeError, AttributeError) as exc:
            verdicts.append(ToolVerdict(tool, None, problem=f"not a valid {tool.kind}: {exc}"))
            continue
        result = await trial(rt, tenant_id, draft, passing)
        verdicts.append(ToolVerdict(tool, draft, result.passed, result.error))
        if result.ok:
            passing.append(ToolSpec(draft.name, draft.description, draft.tool_parameters(),
                                    draft.tool_source(), tool.version, tool.kind))
    return verdicts


async def _apply(
    rt: Runtime, tenant_id: TenantId, agent: AgentExport, prompt: StructuredPrompt,
    verdicts: list[ToolVerdict], actor: str, channel_id: str | None,
) -> Imported:
    imported = Imported(source=f"{agent.source} v{agent.active_version}", tools=verdicts)
    async with rt.repo(tenant_id) as repo:
        active = await repo.active_version()
        home = await _home(repo)
        evolution = await repo.add_evolution(
            trigger=Trigger.IMPORT, status=EvolutionStatus.DONE, base_version=active.version,
            feedback_ids=[], channel_id=channel_id or home, thread_id=None,
            validation={"triggers": [Trigger.IMPORT], "import": {"source": imported.source}},
        )
        refs = [await _store_tool(repo, v, evolution.id) for v in verdicts if v.ok]
        rationale = _rationale(agent, active.model)
        number = await repo.create_version(
            prompt=prompt, model=active.model, temperature=active.temperature, tools=refs,
            parent_version=active.version, created_by=f"evolution:{evolution.id}",
            rationale=rationale,
        )
        await repo.move_label(ACTIVE, number, reason=Trigger.IMPORT, actor=actor,
                              expect=active.version)
        if await repo.label(CANARY) is not None:
            await repo.move_label(CANARY, None, reason=Trigger.IMPORT, actor=actor)
        evolution.candidate_version, evolution.candidate_prompt = number, prompt.model_dump()
        evolution.decision, evolution.reason = Decision.PROMOTED, rationale
        evolution.finished_at = utcnow()
    imported.from_version, imported.to_version = active.version, number
    imported.evolution_id = evolution.id
    return imported


async def _home(repo: TenantRepo) -> str | None:
    tenant = await repo.tenant()
    return tenant.home_channel_id if tenant else None


def _rationale(agent: AgentExport, model_here: str) -> str:
    exported = agent.active()
    text = (f"Imported from {agent.source} (v{agent.active_version}, exported "
            f"{agent.exported_at:%Y-%m-%d %H:%M} UTC).")
    if exported.model != model_here:
        text += f" It ran on {exported.model}; here it runs on {model_here}."
    return text


async def _store_tool(repo: TenantRepo, verdict: ToolVerdict, evolution_id: int) -> str:
    """A new tool row (versions continue this workspace's numbering); its ref."""
    draft = verdict.draft
    assert draft is not None
    version = await next_version(repo, draft.name)
    await repo.add_tool(Tool(
        tenant_id=repo.tenant_id, name=draft.name, version=version, kind=draft.kind,
        description=draft.description, parameters=draft.tool_parameters(),
        source=draft.tool_source(), tests=draft.tool_tests(), status=ACTIVE_STATUS,
        pinned=verdict.tool.pinned, evolution_id=evolution_id,
        note=f"imported ({verdict.tool.ref} in the file)",
    ))
    return ref(draft.name, version)


async def _learn(rt: Runtime, tenant_id: TenantId, learnings: list[PortableLearning]) -> int:
    """The learnings, shared (or not) by this workspace's privacy mode, in one write; how many
    were stored. Each passes the same gate an evolution's learnings pass."""
    async with rt.repo(tenant_id) as repo:
        tenant = await repo.tenant()
    mode = tenant.privacy_mode if tenant else "isolated"
    kept = [NewLearning(x.text, x.domain, x.type, x.confidence, x.impact)
            for x in learnings if x.text.strip() and not text_problems(x.text)]
    if not kept:
        return 0
    try:
        await rt.knowledge.add_learnings(tenant_id, kept, privacy_mode=mode)
    except Exception:
        log.exception("storing the imported learnings failed")
        return 0
    return len(kept)


async def _announce(rt: Runtime, tenant_id: TenantId, imported: Imported,
                    channel_id: str | None) -> None:
    async with rt.repo(tenant_id) as repo:
        old, new = await repo.version(imported.from_version), await repo.version(
            imported.to_version)
        home = await _home(repo)
    assert old is not None and new is not None
    diff = unified_diff(old.prompt, new.prompt, old.version, new.version)
    details = imported.details()
    await rt.notifier.deliver(EvolutionAnnounced(
        tenant_id=tenant_id, evolution_id=imported.evolution_id,
        channel_id=channel_id or home, thread_id=None, decision=Decision.PROMOTED,
        from_version=old.version, to_version=new.version, diff=diff,
        rationale=new.rationale, replay_summary="",
        document=evolution_document(
            decision=Decision.PROMOTED, from_version=old.version, to_version=new.version,
            diff=diff, rationale=new.rationale, replay_summary="",
            evolution_id=imported.evolution_id, details=details,
        ),
    ))
