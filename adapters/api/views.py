"""What the API and the dashboard show, read from one tenant's repository.

Converters from stored rows and engine/progress.py figures to the response models; the
loaders run inside one tenant transaction (`rt.repo(tenant)`)."""

from __future__ import annotations

import statistics
from typing import Any

from adapters.api.schemas import (
    AgentHistory,
    AgentInstance,
    EvolutionView,
    ExecutionResult,
    ExecutionSummary,
    FileLink,
    LabelMoveView,
    LearningMetrics,
    MetaAgentState,
    ToolCallView,
    ToolView,
    VersionDetail,
    VersionDiff,
    VersionMetrics,
    VersionSummary,
)
from engine.progress import AgentProgress, VersionProgress, agent_progress, load_history
from engine.prompt import render, unified_diff
from engine.storage.models import Evolution, Execution, Feedback, LabelMove, Tenant, Tool
from engine.storage.repo import ACTIVE, CANARY, TenantRepo
from engine.tools.box import SUBAGENT
from engine.tools.registry import OFFERED
from engine.types import AgentVersionView, ExecutionStatus, TenantId

API_PLATFORM = "api"
MAX_TOKENS = 600  # what the agent's answers are capped at (engine/runner.py)
RECENT = 20  # feedback, evolutions and executions listed in `state`


def api_tenant(client_id: str) -> TenantId:
    return f"{API_PLATFORM}:{client_id}"


def client_of(tenant_id: TenantId) -> str:
    """`api:acme` was created for client `acme`; any other agent's client is its tenant."""
    platform, _, rest = tenant_id.partition(":")
    return rest if platform == API_PLATFORM else tenant_id


def execution_url(execution_id: int) -> str:
    return f"/v1/executions/{execution_id}"


# --- converters ---------------------------------------------------------------------------


def tool_view(row: Tool) -> ToolView:
    return ToolView(
        name=row.name, version=row.version, kind=row.kind, status=row.status,
        description=row.description, pinned=row.pinned, calls=row.calls,
        success_rate=row.successes / row.calls if row.calls else None,
        avg_duration_s=row.total_duration_s / row.calls if row.calls else None,
        last_used_at=row.last_used_at,
    )


def version_metrics(v: VersionProgress) -> VersionMetrics:
    return VersionMetrics(
        version=v.version, answered=v.answered, infra_failures=v.infra_failures,
        ratings=v.ratings, average_rating=v.average, success_rate=v.success_rate,
        first_try_success=v.first_try_success, latency_p50_s=v.latency_p50_s,
        latency_p95_s=v.latency_p95_s, average_cost_usd=v.average_cost_usd,
    )


def learning_metrics(progress: AgentProgress) -> LearningMetrics:
    return LearningMetrics(
        versions=[version_metrics(v) for v in progress.versions],
        version_count=progress.version_count, evolutions=progress.evolutions,
        evolutions_per_100_answers=round(progress.evolutions_per_100, 2),
        time_to_competence=progress.time_to_competence, rules=progress.rules,
    )


def replay_summary(row: Evolution) -> str:
    replay = (row.validation or {}).get("replay") or {}
    return str(replay.get("summary", "")) if isinstance(replay, dict) else ""


def evolution_view(row: Evolution) -> EvolutionView:
    learnings = [str(x.get("suggested_change", "")) for x in row.learnings or []
                 if isinstance(x, dict)]
    return EvolutionView(
        evolution_id=row.id, trigger=row.trigger, status=row.status, decision=row.decision,
        reason=row.reason, base_version=row.base_version, new_version=row.candidate_version,
        replay_summary=replay_summary(row), learnings=[x for x in learnings if x],
        cost_usd=row.cost_usd, created_at=row.created_at, finished_at=row.finished_at,
    )


def execution_summary(row: Execution, ratings: list[int]) -> ExecutionSummary:
    return ExecutionSummary(
        execution_id=row.id, status=row.status, version=row.version, objective=row.objective,
        output=row.output, duration_s=row.duration_s, created_at=row.created_at,
        ratings=ratings,
    )


def execution_result(row: Execution, files: list[FileLink] | None = None
                     ) -> ExecutionResult:
    calls = [ToolCallView.model_validate(call) for call in row.trace or []
             if isinstance(call, dict)]
    return ExecutionResult(
        execution_id=row.id, agent_id=row.tenant_id, status=row.status,
        objective=row.objective, version=row.version, output=row.output, tool_calls=calls,
        duration_s=row.duration_s, tokens_in=row.tokens_in, tokens_out=row.tokens_out,
        cost_usd=row.cost_usd, error=row.error, created_at=row.created_at,
        url=execution_url(row.id), files=files or [],
    )


def version_summary(v: AgentVersionView, active: int | None, canary: int | None
                    ) -> VersionSummary:
    return VersionSummary(
        version=v.version, parent_version=v.parent_version, created_by=v.created_by,
        rationale=v.rationale, created_at=v.created_at, active=v.version == active,
        canary=v.version == canary,
    )


def label_move_view(row: LabelMove) -> LabelMoveView:
    return LabelMoveView(label=row.label, from_version=row.from_version,
                         to_version=row.to_version, reason=row.reason, actor=row.actor,
                         at=row.at)


def feedback_entry(row: Feedback) -> dict[str, Any]:
    return {
        "feedback_id": row.id, "execution_id": row.execution_id, "rating": row.rating,
        "comment": row.comment, "category": row.category, "source": row.source,
        "successful": None if row.rating is None else row.rating >= 4,
        "timestamp": row.updated_at.isoformat(),
    }


# --- loaders ------------------------------------------------------------------------------


async def _tenant(repo: TenantRepo) -> Tenant:
    tenant = await repo.tenant()
    if tenant is None:
        raise LookupError(repo.tenant_id)
    return tenant


async def progress_of(repo: TenantRepo, active: AgentVersionView) -> AgentProgress:
    return agent_progress(await load_history(repo), rules=len(active.prompt.rules))


async def agent_instance(repo: TenantRepo) -> AgentInstance:
    tenant = await _tenant(repo)
    active = await repo.active_version()
    progress = await progress_of(repo, active)
    return _instance(tenant, active, progress, await _last_evolved(repo))


def _instance(tenant: Tenant, active: AgentVersionView, progress: AgentProgress,
              last_evolved: Any) -> AgentInstance:
    current = next((v for v in progress.versions if v.version == active.version), None)
    return AgentInstance(
        instance_id=tenant.id, client_id=client_of(tenant.id), domain=tenant.domain,
        system_prompt=render(active.prompt), model=active.model,
        temperature=active.temperature, version=active.version, created_at=tenant.created_at,
        last_evolved_at=last_evolved,
        total_objectives_completed=sum(v.answered for v in progress.versions),
        success_rate=current.success_rate if current else None,
    )


async def _last_evolved(repo: TenantRepo) -> Any:
    latest = await repo.evolutions(1)
    return (latest[0].finished_at or latest[0].created_at) if latest else None


async def agent_state(repo: TenantRepo) -> MetaAgentState:
    tenant = await _tenant(repo)
    active = await repo.active_version()
    history = await load_history(repo)
    progress = agent_progress(history, rules=len(active.prompt.rules))
    evolutions = await repo.evolutions(RECENT)
    last_evolved = (evolutions[0].finished_at or evolutions[0].created_at) if evolutions else None
    instance = _instance(tenant, active, progress, last_evolved)
    tools = [tool_view(t) for t in await repo.tools(OFFERED)]
    answered = [e for e in history.executions if e.status == ExecutionStatus.SUCCEEDED]
    ratings = [r for e in history.executions for r in e.ratings]
    recent = await repo.recent_executions(RECENT)
    return MetaAgentState(
        **instance.model_dump(exclude={"total_objectives_completed", "success_rate"}),
        max_tokens=MAX_TOKENS,
        tools=[t for t in tools if t.kind != SUBAGENT],
        sub_agents={t.name: t for t in tools if t.kind == SUBAGENT},
        feedback_history=[feedback_entry(f) for f in await repo.recent_feedback(RECENT)],
        modification_history=[evolution_view(e).model_dump(mode="json") for e in evolutions],
        execution_history=[str(e.id) for e in recent],
        total_executions=len(history.executions), successful_executions=len(answered),
        avg_execution_time=statistics.fmean(e.duration_s for e in answered) if answered else 0,
        avg_user_rating=statistics.fmean(ratings) if ratings else None,
        canary_version=await repo.label(CANARY), evolution_paused=tenant.evolution_paused,
        privacy_mode=tenant.privacy_mode,
        last_executed_at=recent[0].created_at if recent else None,
        metrics=learning_metrics(progress),
    )


async def agent_history(repo: TenantRepo, limit: int, *, include_executions: bool,
                        include_evolutions: bool) -> AgentHistory:
    active, canary = await repo.label(ACTIVE), await repo.label(CANARY)
    executions = None
    if include_executions:
        ratings: dict[int, list[int]] = {}
        for execution_id, rating in await repo.live_ratings():
            ratings.setdefault(execution_id, []).append(rating)
        executions = [execution_summary(e, ratings.get(e.id, []))
                      for e in await repo.recent_executions(limit)]
    evolutions = ([evolution_view(e) for e in await repo.evolutions(limit)]
                  if include_evolutions else None)
    return AgentHistory(
        agent_id=repo.tenant_id,
        versions=[version_summary(v, active, canary) for v in await repo.versions(limit)],
        label_moves=[label_move_view(m) for m in await repo.label_moves(limit)],
        executions=executions, evolutions=evolutions,
    )


async def version_detail(repo: TenantRepo, number: int) -> VersionDetail | None:
    version = await repo.version(number)
    if version is None:
        return None
    summary = version_summary(version, await repo.label(ACTIVE), await repo.label(CANARY))
    return VersionDetail(
        **summary.model_dump(), system_prompt=render(version.prompt),
        prompt=version.prompt.model_dump(), model=version.model,
        temperature=version.temperature, tools=version.tools,
    )


async def version_diff(repo: TenantRepo, old: int, new: int) -> VersionDiff | None:
    a, b = await repo.version(old), await repo.version(new)
    if a is None or b is None:
        return None
    return VersionDiff(agent_id=repo.tenant_id, from_version=old, to_version=new,
                       diff=unified_diff(a.prompt, b.prompt, old, new))
