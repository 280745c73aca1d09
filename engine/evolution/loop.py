"""The evolve and review jobs: DESIGN §4 steps 1–6.

`evolve(tenant)` turns the tenant's unused feedback into at most one new version, under a
per-tenant lock; promotion is one transaction that checks the parent is still active.
`review(tenant)` decides canaries and watches freshly promoted versions for degradation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from engine.evolution.checks import structural_problems, text_problems
from engine.evolution.propose import ops_confidence, propose_ops
from engine.evolution.reflect import Learning, RatedExample, ReflectResult, reflect
from engine.evolution.replay import ReplayCase, ReplayReport, replay
from engine.evolution.stats import prob_worse
from engine.llm.gateway import Usage
from engine.present import evolution_document, rollback_document, text_document
from engine.prompt import EditError, apply_ops, render, unified_diff
from engine.runtime import Runtime
from engine.storage.models import Evolution, Execution, Feedback, utcnow
from engine.storage.repo import ACTIVE, CANARY, StaleLabel, TenantRepo
from engine.tools.box import ToolBox
from engine.tools.lifecycle import review_tools
from engine.types import (
    AgentVersionView,
    Decision,
    EvolutionAnnounced,
    Notice,
    RolledBack,
    StructuredPrompt,
    TenantId,
)

log = logging.getLogger(__name__)
LOCK_TIMEOUT_S = 900.0


@dataclass
class Outcome:
    evolution_id: int | None
    decision: Decision
    reason: str
    new_version: int | None = None


async def evolve(rt: Runtime, tenant_id: TenantId, *, trigger: str = "feedback") -> Outcome:
    async with rt.locks.lock(f"evobot:evolve:{tenant_id}", LOCK_TIMEOUT_S) as acquired:
        if not acquired:
            return Outcome(None, Decision.SKIPPED, "another evolution holds the lock")
        return await _evolve_locked(rt, tenant_id, trigger)


async def _evolve_locked(rt: Runtime, tenant_id: TenantId, trigger: str) -> Outcome:
    async with rt.repo(tenant_id) as repo:
        tenant = await repo.tenant()
        if tenant is None:
            return Outcome(None, Decision.SKIPPED, "unknown tenant")
        if tenant.evolution_paused:
            return Outcome(None, Decision.SKIPPED, "evolution is paused")
        pairs = await repo.unused_feedback()
        base = await repo.active_version()
        privacy = tenant.privacy_mode
        # a new tenant that opted into sharing starts from the best shared patterns
        bootstrap = trigger == "bootstrap" and privacy != "isolated" and not base.prompt.rules
        if not pairs and not bootstrap:
            return Outcome(None, Decision.SKIPPED, "no new feedback")
        positives = await repo.positive_examples(limit=rt.settings.replay_positives + 3)
        anchor_channel, anchor_thread = tenant.home_channel_id, None
        if pairs:
            anchor = _anchor(pairs)
            anchor_channel, anchor_thread = anchor.channel_id, anchor.thread_id
        evolution = await repo.add_evolution(
            trigger=trigger,
            base_version=base.version,
            feedback_ids=[f.id for f, _ in pairs],
            channel_id=anchor_channel,
            thread_id=anchor_thread,
        )
        evolution_id = evolution.id
        examples = [_example(f, e) for f, e in pairs]
        cases = _replay_cases(pairs, positives, rt)

    try:
        outcome = await _run_steps(
            rt, tenant_id, evolution_id, base, examples, cases, privacy, bootstrap
        )
    except Exception as exc:
        log.exception("evolution %s of %s failed", evolution_id, tenant_id)
        async with rt.repo(tenant_id) as repo:
            row = await repo.evolution(evolution_id)
            if row is not None:
                row.status, row.reason, row.finished_at = "failed", f"error: {exc}", utcnow()
        raise
    if outcome.decision in (Decision.PROMOTED, Decision.CANARY):
        await _remember_accepted(rt, tenant_id, outcome.evolution_id, privacy)
    # tools after the prompt decision: a tool version built on the same parent first would
    # make the prompt's optimistic label check fail and lose the rule
    await _hand_tool_needs(
        rt, tenant_id, evolution_id, await _stored_learnings(rt, tenant_id, evolution_id)
    )
    return outcome


async def _stored_learnings(rt: Runtime, tenant_id: TenantId, evolution_id: int) -> list[Learning]:
    async with rt.repo(tenant_id) as repo:
        row = await repo.evolution(evolution_id)
        return [Learning.model_validate(x) for x in (row.learnings if row else [])]


async def _run_steps(
    rt: Runtime,
    tenant_id: TenantId,
    evolution_id: int,
    base: AgentVersionView,
    examples: list[RatedExample],
    cases: list[ReplayCase],
    privacy: str,
    bootstrap: bool = False,
) -> Outcome:
    if bootstrap:
        patterns = await _shared_patterns(rt, tenant_id, privacy)
        reflection = ReflectResult(patterns, Usage(), False, [])
    else:
        past = await _past_learnings(rt, tenant_id, examples, privacy)
        reflection = await reflect(
            rt.gateway,
            rt.settings.evolver,
            rendered_prompt=render(base.prompt),
            rules=[{"id": r.id, "text": r.text} for r in base.prompt.rules],
            examples=examples,
            past_learnings=past,
        )
        await _record_objectives(rt, tenant_id, examples, reflection.learnings)
    cost = reflection.usage.cost_usd
    learnings, refused = _drop_unsafe(reflection.learnings)
    ops = propose_ops(base.prompt, learnings)
    record: dict[str, Any] = {
        "learnings": [x.model_dump() for x in learnings],
        "ops": [op.model_dump() for op in ops],
        "validation": {
            "reflect_errors": reflection.errors,
            "fallback": reflection.used_fallback,
            "refused_learnings": refused,
        },
    }
    if not ops and refused:
        return await _finish(
            rt,
            tenant_id,
            evolution_id,
            record,
            Decision.REJECTED,
            "refused unsafe suggestions: " + "; ".join(refused),
            cost,
        )
    if not ops:
        return await _finish(
            rt, tenant_id, evolution_id, record, Decision.SKIPPED, "no prompt change proposed", cost
        )
    try:
        candidate_prompt = apply_ops(base.prompt, ops, base.version + 1)
    except EditError as exc:
        return await _finish(
            rt, tenant_id, evolution_id, record, Decision.REJECTED, f"invalid edit: {exc}", cost
        )
    record["candidate_prompt"] = candidate_prompt.model_dump()
    problems = structural_problems(base.prompt, candidate_prompt)
    if problems:
        record["validation"]["structural"] = problems
        return await _finish(
            rt,
            tenant_id,
            evolution_id,
            record,
            Decision.REJECTED,
            "structural checks failed: " + "; ".join(problems),
            cost,
        )
    candidate = base.model_copy(update={"prompt": candidate_prompt, "version": base.version + 1})
    report = await replay(
        rt.gateway,
        rt.settings.judge,
        base,
        candidate,
        cases,
        toolbox=ToolBox([], None),
        max_steps=rt.settings.max_steps,
    )
    cost += report.usage.cost_usd
    record["validation"]["replay"] = report.as_dict()
    passed = report.no_worse if bootstrap else report.passed
    if not passed:
        return await _finish(
            rt,
            tenant_id,
            evolution_id,
            record,
            Decision.REJECTED,
            f"replay gate: {report.summary()}",
            cost,
            report=report,
        )
    confidence = ops_confidence(ops)
    rationale = "; ".join(x.rationale or x.issue for x in learnings if x.type == "prompt_rule")
    if bootstrap:
        # shared patterns are someone else's lessons: prove them on this tenant's users first
        decision = Decision.CANARY
        rationale = "bootstrapped from shared patterns (anonymized): " + rationale
    elif confidence >= rt.settings.promote_confidence:
        decision = Decision.PROMOTED
    elif confidence >= rt.settings.canary_confidence:
        decision = Decision.CANARY
    else:
        decision = Decision.NEEDS_APPROVAL
    return await _finish(
        rt, tenant_id, evolution_id, record, decision, rationale, cost, report=report, base=base
    )


async def _finish(
    rt: Runtime,
    tenant_id: TenantId,
    evolution_id: int,
    record: dict[str, Any],
    decision: Decision,
    reason: str,
    cost: float,
    *,
    report: ReplayReport | None = None,
    base: AgentVersionView | None = None,
) -> Outcome:
    """Record the decision (and create/label the version) in one transaction, then announce."""
    new_version: int | None = None
    async with rt.repo(tenant_id) as repo:
        row = await repo.evolution(evolution_id)
        assert row is not None
        row.learnings, row.ops = record["learnings"], record["ops"]
        row.validation = record["validation"]
        row.candidate_prompt = record.get("candidate_prompt")
        row.cost_usd, row.finished_at, row.status = cost, utcnow(), "done"
        if base is not None and decision in (Decision.PROMOTED, Decision.CANARY):
            try:
                new_version = await _create_and_label(repo, row, base, decision, reason)
            except StaleLabel as exc:
                decision, reason = Decision.SKIPPED, f"superseded: {exc}"
        row.decision, row.reason, row.candidate_version = decision.value, reason, new_version
        await repo.mark_feedback_used(list(row.feedback_ids), evolution_id)
        channel_id, thread_id = row.channel_id, row.thread_id
    if decision in (Decision.PROMOTED, Decision.CANARY, Decision.NEEDS_APPROVAL):
        await _announce(
            rt,
            tenant_id,
            evolution_id,
            decision,
            record,
            reason,
            report,
            base,
            new_version,
            channel_id,
            thread_id,
        )
    elif decision == Decision.REJECTED:
        # tell the people who gave the feedback that it was heard, and why nothing changed
        await rt.notifier.deliver(
            Notice(
                tenant_id=tenant_id,
                channel_id=channel_id,
                thread_id=thread_id,
                document=text_document(
                    f"Evolution #{evolution_id}: no change",
                    reason[:500],
                    context="The agent stays as it is; this feedback will not be retried.",
                ),
            )
        )
    return Outcome(evolution_id, decision, reason, new_version)


async def _create_and_label(
    repo: TenantRepo, row: Evolution, base: AgentVersionView, decision: Decision, reason: str
) -> int:
    number = await repo.create_version(
        prompt=StructuredPrompt.model_validate(row.candidate_prompt),
        model=base.model,
        temperature=base.temperature,
        tools=base.tools,
        parent_version=base.version,
        created_by=f"evolution:{row.id}",
        rationale=reason,
    )
    if decision == Decision.PROMOTED:
        await repo.move_label(
            ACTIVE, number, reason="promote", actor=f"evolution:{row.id}", expect=base.version
        )
    else:
        if await repo.label(ACTIVE) != base.version:
            raise StaleLabel("active moved during the evolution")
        await repo.move_label(CANARY, number, reason="canary", actor=f"evolution:{row.id}")
    return number


async def _announce(
    rt: Runtime,
    tenant_id: TenantId,
    evolution_id: int,
    decision: Decision,
    record: dict[str, Any],
    reason: str,
    report: ReplayReport | None,
    base: AgentVersionView | None,
    new_version: int | None,
    channel_id: str | None,
    thread_id: str | None,
) -> None:
    assert base is not None
    candidate = StructuredPrompt.model_validate(record["candidate_prompt"])
    shown_version = new_version or base.version + 1
    diff = unified_diff(base.prompt, candidate, base.version, shown_version)
    summary = report.summary() if report else ""
    document = evolution_document(
        decision=decision,
        from_version=base.version,
        to_version=new_version,
        diff=diff,
        rationale=reason,
        replay_summary=summary,
        evolution_id=evolution_id,
    )
    delivery = await rt.notifier.deliver(
        EvolutionAnnounced(
            tenant_id=tenant_id,
            evolution_id=evolution_id,
            channel_id=channel_id,
            thread_id=thread_id,
            decision=decision,
            from_version=base.version,
            to_version=new_version,
            diff=diff,
            rationale=reason,
            replay_summary=summary,
            document=document,
        )
    )
    if delivery.ref is not None:
        async with rt.repo(tenant_id) as repo:
            row = await repo.evolution(evolution_id)
            if row is not None:
                row.announcement_ref = f"{delivery.ref.channel_id}:{delivery.ref.message_id}"


# --- approval -------------------------------------------------------------------


async def apply_approved(rt: Runtime, tenant_id: TenantId, evolution_id: int, actor: str) -> str:
    async with rt.repo(tenant_id) as repo:
        row = await repo.evolution(evolution_id)
        if row is None or row.decision != Decision.NEEDS_APPROVAL.value:
            return "That evolution is not waiting for approval."
        base = await repo.active_version()
        if base.version != row.base_version:
            row.decision, row.reason = Decision.SKIPPED.value, "superseded before approval"
            return f"The agent changed since (now v{base.version}); this proposal is outdated."
        number = await _create_and_label(repo, row, base, Decision.PROMOTED, row.reason)
        row.decision, row.candidate_version = Decision.PROMOTED.value, number
        row.reason = f"{row.reason} (approved by {actor})"
        channel_id, thread_id = row.channel_id, row.thread_id
    await rt.notifier.deliver(
        Notice(
            tenant_id=tenant_id,
            channel_id=channel_id,
            thread_id=thread_id,
            document=text_document(f"Approved by {actor}: v{base.version} → v{number}"),
        )
    )
    return f"Applied: v{number} is now active."


async def dismiss_approval(rt: Runtime, tenant_id: TenantId, evolution_id: int, actor: str) -> str:
    async with rt.repo(tenant_id) as repo:
        row = await repo.evolution(evolution_id)
        if row is None or row.decision != Decision.NEEDS_APPROVAL.value:
            return "That evolution is not waiting for approval."
        row.decision, row.reason = Decision.REJECTED.value, f"dismissed by {actor}"
    return "Dismissed."


# --- review: canary and degradation watch -----------------------------------------


async def review(rt: Runtime, tenant_id: TenantId) -> str | None:
    """Decide a canary with enough ratings; roll back a clearly worse fresh promotion;
    then the tools' lifecycle: stale, archived, and retire the ones that keep failing."""
    async with rt.locks.lock(f"evobot:evolve:{tenant_id}", LOCK_TIMEOUT_S) as acquired:
        if not acquired:
            return None
        versions = await _review_canary(rt, tenant_id) or await _watch(rt, tenant_id)
        tools = await review_tools(rt, tenant_id)
        return "; ".join(x for x in (versions, tools) if x) or None


async def _review_canary(rt: Runtime, tenant_id: TenantId) -> str | None:
    async with rt.repo(tenant_id) as repo:
        label = await repo.label_row(CANARY)
        if label is None:
            return None
        canary_v, active_v = label.version, await repo.label(ACTIVE)
        assert active_v is not None
        stats = await repo.rating_stats(since=label.moved_at)
        canary = stats.get(canary_v)
        if canary is None or canary.count < rt.settings.canary_min_ratings:
            return None
        active = stats.get(active_v)
        a_pos, a_neg = (active.positives, active.negatives) if active else (0, 0)
        p_worse = prob_worse(canary.positives, canary.negatives, a_pos, a_neg)
        channel_id = await _latest_channel(repo)
        if p_worse >= rt.settings.canary_drop_probability:
            await repo.move_label(
                CANARY,
                None,
                reason="canary_dropped",
                actor="review",
                note=f"P(worse)={p_worse:.2f}",
            )
            title = f"Canary v{canary_v} dropped; v{active_v} stays active"
        else:
            await repo.move_label(
                ACTIVE,
                canary_v,
                reason="promote",
                actor="review",
                note=f"canary P(worse)={p_worse:.2f}",
                expect=active_v,
            )
            await repo.move_label(CANARY, None, reason="canary_promoted", actor="review")
            title = f"Canary promoted: v{active_v} → v{canary_v}"
    detail = (
        f"canary v{canary_v}: {canary.average:.1f} avg over {canary.count} ratings; "
        f"v{active_v}: {a_pos} positive of {a_pos + a_neg}; P(canary worse) = {p_worse:.2f}"
    )
    await rt.notifier.deliver(
        Notice(
            tenant_id=tenant_id,
            channel_id=channel_id,
            thread_id=None,
            document=text_document(title, detail),
        )
    )
    return title


async def _watch(rt: Runtime, tenant_id: TenantId) -> str | None:
    async with rt.repo(tenant_id) as repo:
        current = await repo.active_version()
        parent = current.parent_version
        if parent is None or not current.created_by.startswith("evolution"):
            return None
        promoted_at = await repo.last_promotion_at(current.version)
        recent = await repo.rating_stats(since=promoted_at)
        mine = recent.get(current.version)
        if mine is None or mine.count < rt.settings.watch_min_ratings:
            return None
        before = (await repo.rating_stats()).get(parent)
        p_pos, p_neg = (before.positives, before.negatives) if before else (0, 0)
        p_worse = prob_worse(mine.positives, mine.negatives, p_pos, p_neg)
        if p_worse < rt.settings.watch_rollback_probability:
            return None
        reason = (
            f"v{current.version} rated {mine.average:.1f} on average over {mine.count} ratings "
            f"({mine.positives} positive) vs v{parent}'s {p_pos} positive of {p_pos + p_neg}: "
            f"P(worse) = {p_worse:.2f}"
        )
        await repo.move_label(
            ACTIVE,
            parent,
            reason="auto_rollback",
            actor="watch",
            note=reason,
            expect=current.version,
        )
        channel_id = await _latest_channel(repo)
    await rt.notifier.deliver(
        RolledBack(
            tenant_id=tenant_id,
            channel_id=channel_id,
            thread_id=None,
            from_version=current.version,
            to_version=parent,
            automatic=True,
            reason=reason,
            actor="watch",
            document=rollback_document(
                from_version=current.version,
                to_version=parent,
                automatic=True,
                reason=reason,
                actor="watch",
            ),
        )
    )
    return reason


# --- helpers ------------------------------------------------------------------------


def _drop_unsafe(learnings: list[Learning]) -> tuple[list[Learning], list[str]]:
    """Learnings whose text trips the injection/secret checks never reach the prompt."""
    safe, refused = [], []
    for learning in learnings:
        problems = text_problems(learning.suggested_change)
        if problems:
            refused.append(f"{learning.suggested_change[:80]!r}: {', '.join(problems)}")
        else:
            safe.append(learning)
    return safe, refused


def _example(feedback: Feedback, execution: Execution) -> RatedExample:
    return RatedExample(
        feedback.id, execution.objective, execution.output or "", feedback.rating, feedback.comment
    )


def _anchor(pairs: list[tuple[Feedback, Execution]]) -> Execution:
    """Announce where the most telling feedback came from: the latest negative, else latest."""
    negatives = [e for f, e in pairs if f.rating is not None and f.rating <= 3]
    return (negatives or [e for _, e in pairs])[-1]


def _replay_cases(
    pairs: list[tuple[Feedback, Execution]],
    positives: list[tuple[Feedback, Execution]],
    rt: Runtime,
) -> list[ReplayCase]:
    cases: list[ReplayCase] = []
    seen: set[str] = set()
    for feedback, execution in reversed(pairs):
        if feedback.rating is not None and feedback.rating <= 3 and execution.objective not in seen:
            seen.add(execution.objective)
            cases.append(ReplayCase(execution.objective, _rubric(feedback), negative=True))
    cases = cases[: rt.settings.replay_negatives]
    kept = 0
    for feedback, execution in positives:
        if kept >= rt.settings.replay_positives or execution.objective in seen:
            continue
        seen.add(execution.objective)
        cases.append(ReplayCase(execution.objective, _rubric(feedback), negative=False))
        kept += 1
    return cases


def _rubric(feedback: Feedback) -> str:
    comment = f' and said: "{feedback.comment}"' if feedback.comment else ""
    return f"a user rated the earlier answer {feedback.rating}/5{comment}"


async def _latest_channel(repo: TenantRepo) -> str | None:
    tenant = await repo.tenant()
    return tenant.home_channel_id if tenant else None


async def _past_learnings(
    rt: Runtime, tenant_id: TenantId, examples: list[RatedExample], privacy: str
) -> list[str]:
    query = " ".join(e.objective for e in examples)[:1000]
    try:
        hits = await rt.knowledge.relevant_learnings(tenant_id, query, privacy_mode=privacy, k=5)
    except Exception:
        log.exception("knowledge lookup failed; reflecting without it")
        return []
    return [hit.text for hit in hits]


async def _remember_accepted(
    rt: Runtime, tenant_id: TenantId, evolution_id: int | None, privacy: str
) -> None:
    """Only learnings that passed validation become knowledge (and, by mode, shared)."""
    if evolution_id is None:
        return
    async with rt.repo(tenant_id) as repo:
        row = await repo.evolution(evolution_id)
        learnings = [Learning.model_validate(x) for x in (row.learnings if row else [])]
        tenant = await repo.tenant()
        domain = tenant.domain if tenant else "general"
    for learning in learnings:
        if learning.type != "prompt_rule" or not learning.suggested_change:
            continue
        try:
            await rt.knowledge.add_learning(
                tenant_id,
                learning.suggested_change,
                domain=domain,
                type=learning.type,
                confidence=learning.confidence,
                impact=learning.impact,
                privacy_mode=privacy,
            )
        except Exception:
            log.exception("storing a learning failed")


async def _record_objectives(
    rt: Runtime, tenant_id: TenantId, examples: list[RatedExample], learnings: list[Learning]
) -> None:
    """Rated objectives become searchable history: badly rated ones carry their lesson."""
    lessons = {i: x.suggested_change for x in learnings for i in x.feedback_ids}
    for example in examples:
        if example.rating is None:
            continue
        lesson = lessons.get(example.feedback_id) or (example.comment or "")
        try:
            await rt.knowledge.record_objective(
                tenant_id, example.objective, outcome_rating=example.rating, lesson=lesson[:300]
            )
        except Exception:
            log.exception("recording an objective failed")


async def _shared_patterns(rt: Runtime, tenant_id: TenantId, privacy: str) -> list[Learning]:
    try:
        hits = await rt.knowledge.bootstrap_rules(tenant_id, privacy_mode=privacy, k=3)
    except Exception:
        log.exception("bootstrap lookup failed")
        return []
    return [
        Learning(
            suggested_change=hit.text,
            issue="a pattern other workspaces learned",
            rationale=f"shared pattern (confidence {hit.confidence:.2f})",
            confidence=min(hit.confidence, 0.6),
            impact=hit.impact,
        )
        for hit in hits
    ]


async def _hand_tool_needs(
    rt: Runtime, tenant_id: TenantId, evolution_id: int, learnings: list[Learning]
) -> None:
    needs = [x for x in learnings if x.type in ("tool_need", "tool_removal")]
    for learning in needs:
        try:
            await rt.tool_maker(rt, tenant_id, evolution_id, learning)
        except Exception:
            log.exception("tool maker failed for %s", learning.issue)
