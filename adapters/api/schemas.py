"""The REST API's request and response bodies, with the seed's field names.

An agent's id is its tenant id (`api:acme`, `slack:T0123`): one agent per tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from engine.types import FeedbackCategory

CLIENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DOMAIN = r"^[a-z][a-z0-9_-]{1,49}$"
SHORT = 200  # user ids, thread ids


class Strict(BaseModel):
    """Unknown fields are an error: a typo must not pass silently."""

    model_config = {"extra": "forbid"}


# --- requests -----------------------------------------------------------------------------


class CreateAgent(Strict):
    client_id: str = Field(pattern=CLIENT_ID, description="becomes the agent id `api:<client_id>`")
    initial_objective: str = Field(min_length=1, max_length=2000,
                                   description="what the agent is for; part of its persona")
    domain: str | None = Field(default=None, pattern=DOMAIN)
    bootstrap_mode: Literal["minimal", "collective"] = "collective"


class Execute(Strict):
    objective: str = Field(min_length=1, max_length=8000)
    context: dict[str, Any] | None = Field(
        default=None, description="shown to the agent with the objective")
    stream: bool = Field(default=False, description="answer as Server-Sent Events")
    user_id: str | None = Field(default=None, max_length=SHORT,
                                description="who asks (one rating per user; canary arm)")
    thread_id: str | None = Field(default=None, max_length=SHORT,
                                  description="objectives of one thread share their history")


class SubmitFeedback(Strict):
    execution_id: int = Field(ge=1)
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=4000)
    category: FeedbackCategory | None = None
    successful: bool | None = Field(
        default=None, description="optional; success is a rating of 4 or 5, so it must agree")
    suggestions: list[str] | None = Field(default=None, max_length=10)
    user_id: str | None = Field(default=None, max_length=SHORT)

    @model_validator(mode="after")
    def _agrees_with_rating(self) -> SubmitFeedback:
        if self.successful is not None and self.successful != (self.rating >= 4):
            raise ValueError("`successful` contradicts `rating` (success is a rating of 4 or 5)")
        return self


class Rollback(Strict):
    target_version: int = Field(ge=1)


# --- responses ----------------------------------------------------------------------------


class AgentInstance(BaseModel):
    instance_id: str
    client_id: str
    domain: str | None
    system_prompt: str
    model: str
    temperature: float
    version: int
    created_at: datetime
    last_evolved_at: datetime | None
    total_objectives_completed: int
    success_rate: float | None


class CreatedAgent(AgentInstance):
    api_key: str = Field(description="an admin key of this agent, shown once")


class ToolCallView(BaseModel):
    step: int
    tool: str
    arguments: dict[str, Any]
    ok: bool
    result: str
    duration_s: float


class FileLink(BaseModel):
    """A file the execution's code made: download it (with the same key) from `url`."""

    name: str
    media_type: str
    size: int
    url: str


class ExecutionResult(BaseModel):
    execution_id: int
    agent_id: str
    status: str
    objective: str
    version: int
    output: str | None
    tool_calls: list[ToolCallView]
    duration_s: float
    tokens_in: int
    tokens_out: int
    cost_usd: float
    error: str | None
    created_at: datetime
    url: str
    files: list[FileLink] = Field(default_factory=list)


class FeedbackAcknowledgment(BaseModel):
    recorded: bool
    execution_id: int | None
    rating: int | None
    message: str
    evolution_queued: bool


class VersionMetrics(BaseModel):
    version: int
    answered: int
    infra_failures: int
    ratings: int
    average_rating: float | None
    success_rate: float | None
    first_try_success: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    average_cost_usd: float | None


class LearningMetrics(BaseModel):
    versions: list[VersionMetrics]
    version_count: int
    evolutions: int
    evolutions_per_100_answers: float
    time_to_competence: int | None
    rules: int


class ToolView(BaseModel):
    name: str
    version: int
    kind: str
    status: str
    description: str
    pinned: bool
    calls: int
    success_rate: float | None
    avg_duration_s: float | None
    last_used_at: datetime | None


class MetaAgentState(BaseModel):
    instance_id: str
    client_id: str
    domain: str | None
    system_prompt: str
    model: str
    temperature: float
    max_tokens: int
    tools: list[ToolView]
    sub_agents: dict[str, ToolView]
    feedback_history: list[dict[str, Any]]
    modification_history: list[dict[str, Any]]
    execution_history: list[str]
    total_executions: int
    successful_executions: int
    avg_execution_time: float
    avg_user_rating: float | None
    version: int
    canary_version: int | None
    evolution_paused: bool
    privacy_mode: str
    created_at: datetime
    last_evolved_at: datetime | None
    last_executed_at: datetime | None
    metrics: LearningMetrics


class ExecutionSummary(BaseModel):
    execution_id: int
    status: str
    version: int
    objective: str
    output: str | None
    duration_s: float
    created_at: datetime
    ratings: list[int]


class EvolutionView(BaseModel):
    evolution_id: int
    trigger: str
    status: str
    decision: str | None
    reason: str
    base_version: int
    new_version: int | None
    replay_summary: str
    learnings: list[str]
    cost_usd: float
    created_at: datetime
    finished_at: datetime | None


class VersionSummary(BaseModel):
    version: int
    parent_version: int | None
    created_by: str
    rationale: str
    created_at: datetime | None
    active: bool
    canary: bool


class LabelMoveView(BaseModel):
    label: str
    from_version: int | None
    to_version: int | None
    reason: str
    actor: str
    at: datetime


class AgentHistory(BaseModel):
    agent_id: str
    versions: list[VersionSummary]
    label_moves: list[LabelMoveView]
    executions: list[ExecutionSummary] | None
    evolutions: list[EvolutionView] | None


class VersionDetail(VersionSummary):
    system_prompt: str
    prompt: dict[str, Any]
    model: str
    temperature: float
    tools: list[str]


class VersionDiff(BaseModel):
    agent_id: str
    from_version: int
    to_version: int
    diff: str


class ImportedAgent(BaseModel):
    """An agent file made into a new version: what it became and what was left out."""

    from_version: int
    to_version: int
    evolution_id: int
    tools: list[str]  # "name (N passed)"
    left_out: list[str]  # "name (why)"
    learnings: int


class Problem(BaseModel):
    detail: str
