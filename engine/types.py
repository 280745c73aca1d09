"""The engine's vocabulary: what adapters send in, what the engine sends out.

Adapters convert platform payloads to these types (and engine events back to
platform messages); nothing here knows about Slack, Telegram or the console.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TenantId = str  # "slack:T123", "slack:E1:T123", "telegram:-100123", "local:default"


def tenant_platform(tenant_id: TenantId) -> str:
    """The platform part of a tenant id ("slack", "telegram", "local")."""
    return tenant_id.split(":", 1)[0]


def is_one_person_tenant(tenant_id: TenantId) -> bool:
    """The console, and a Telegram private chat (positive chat ids; groups are negative):
    whoever asks for a change is everyone the agent serves."""
    platform, _, rest = tenant_id.partition(":")
    return platform == "local" or (platform == "telegram" and rest.isdigit())


class PrivacyMode(StrEnum):
    ISOLATED = "isolated"
    FEDERATED = "federated"
    COLLECTIVE = "collective"


class ExecutionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # infra failure (LLM timeout, crash): never learned from


class EvolutionStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"  # a decision was recorded (promoted, canary, rejected, …)
    FAILED = "failed"  # a step raised: recorded with the error, never retried


class Decision(StrEnum):
    PROMOTED = "promoted"
    CANARY = "canary"
    REJECTED = "rejected"
    NEEDS_APPROVAL = "needs_approval"
    SKIPPED = "skipped"  # nothing to learn, paused, or superseded


class FeedbackCategory(StrEnum):
    """What kind of problem a rating is about (optional; users pick it beside a comment)."""

    WRONG = "wrong"
    INCOMPLETE = "incomplete"
    TOO_LONG = "too_long"
    TOO_SHORT = "too_short"
    FORMAT = "format"
    TONE = "tone"
    LANGUAGE = "language"
    OTHER = "other"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()

    @classmethod
    def parse(cls, text: str) -> FeedbackCategory | None:
        """`too-long`, `Too long` and `too_long` all name TOO_LONG; None if no category."""
        key = text.strip().lower().replace("-", "_").replace(" ", "_")
        return cls(key) if key in cls._value2member_map_ else None


class FeedbackSource(StrEnum):
    REACTION = "reaction"
    BUTTON = "button"
    COMMENT = "comment"
    COMMAND = "command"


# --- the structured prompt -------------------------------------------------


class Rule(BaseModel):
    id: str  # short stable id, e.g. "r3"
    text: str
    provenance: list[int] = Field(default_factory=list)  # feedback ids
    confidence: float = 0.5
    created_in_version: int = 1


class StructuredPrompt(BaseModel):
    persona: str
    rules: list[Rule] = Field(default_factory=list)
    tool_notes: str = ""


class AgentVersionView(BaseModel):
    """An immutable version of a tenant's agent."""

    tenant_id: TenantId
    version: int
    prompt: StructuredPrompt
    model: str
    temperature: float
    tools: list[str] = Field(default_factory=list)  # "name@version"
    parent_version: int | None
    created_by: str  # "evolution:<id>" | "rollback" | "human" | "seed"
    rationale: str = ""
    created_at: datetime | None = None


# --- inbound ------------------------------------------------------------------


class MessageRef(BaseModel):
    """Where a platform message lives, so reactions and replies find their execution."""

    channel_id: str
    message_id: str
    thread_id: str | None = None


class InboundMessage(BaseModel):
    tenant_id: TenantId
    channel_id: str
    user_id: str
    text: str
    message_id: str | None = None
    thread_id: str | None = None  # thread root (Slack thread_ts, Telegram topic/reply root)
    user_name: str | None = None
    # False: answer here, but keep announcing evolutions where they went (an API call)
    announce_here: bool = True


class InboundFeedback(BaseModel):
    """A rating or comment. Found by execution id or by the answer's platform message."""

    tenant_id: TenantId
    user_id: str
    source: FeedbackSource
    rating: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = None
    category: FeedbackCategory | None = None
    suggestion: str | None = None  # what the answer should have been, if the user said
    from_admin: bool = False  # given by a workspace/chat admin (their requests reach further)
    retract: bool = False  # a removed reaction
    execution_id: int | None = None
    answer_ref: MessageRef | None = None


class InboundCommand(BaseModel):
    tenant_id: TenantId
    user_id: str
    name: str
    args: list[str] = Field(default_factory=list)
    channel_id: str | None = None
    is_admin: bool = False  # decided by the adapter from platform roles or EVOBOT_ADMINS


# --- results and outbound events ---------------------------------------------


class Accepted(BaseModel):
    """handle_message's answer: the execution is recorded and queued."""

    execution_id: int
    version: int


class FeedbackResult(BaseModel):
    recorded: bool
    execution_id: int | None = None
    rating: int | None = None
    message: str  # short acknowledgement for the user ("Thanks — rated 2/5")
    evolution_queued: bool = False
    invite_comment: bool = False  # a new negative rating: adapters ask what went wrong


class Block(BaseModel):
    """A platform-neutral piece of a message; adapters render each kind natively."""

    kind: Literal["header", "text", "code", "fields", "context", "diff"]
    text: str = ""
    fields: list[tuple[str, str]] = Field(default_factory=list)


class Button(BaseModel):
    action: str  # "rollback", "apply", "dismiss", "rate"
    label: str
    value: str
    style: Literal["primary", "danger", "default"] = "default"
    admin_only: bool = False


class Document(BaseModel):
    """A whole outbound message: a plain-text summary plus rich blocks and buttons."""

    summary: str
    blocks: list[Block] = Field(default_factory=list)
    buttons: list[Button] = Field(default_factory=list)

    def plain_text(self) -> str:
        parts = []
        for block in self.blocks:
            if block.kind == "fields":
                parts.append("\n".join(f"{k}: {v}" for k, v in block.fields))
            else:
                parts.append(block.text)
        return "\n\n".join(p for p in parts if p) or self.summary


class CommandReply(BaseModel):
    ok: bool
    document: Document
    private: bool = True  # shown only to the caller where the platform allows


class AnswerReady(BaseModel):
    type: Literal["answer"] = "answer"
    tenant_id: TenantId
    execution_id: int
    channel_id: str
    thread_id: str | None
    reply_to: str | None  # the objective's message id
    user_id: str
    text: str
    version: int
    tool_count: int
    duration_s: float
    footer: str


class ExecutionFailed(BaseModel):
    type: Literal["execution_failed"] = "execution_failed"
    tenant_id: TenantId
    execution_id: int
    channel_id: str
    thread_id: str | None
    reply_to: str | None
    user_id: str
    reason: str


class Working(BaseModel):
    """The job started: adapters show a typing action / 👀 / placeholder."""

    type: Literal["working"] = "working"
    tenant_id: TenantId
    execution_id: int
    channel_id: str
    thread_id: str | None
    reply_to: str | None


class EvolutionAnnounced(BaseModel):
    type: Literal["evolution"] = "evolution"
    tenant_id: TenantId
    evolution_id: int
    channel_id: str | None
    thread_id: str | None
    decision: Decision
    from_version: int
    to_version: int | None
    diff: str
    rationale: str
    replay_summary: str
    document: Document


class ToolAnnounced(BaseModel):
    type: Literal["tool"] = "tool"
    tenant_id: TenantId
    channel_id: str | None
    thread_id: str | None
    name: str
    description: str
    signature: str
    tests_passed: int
    version: int
    document: Document


class RolledBack(BaseModel):
    type: Literal["rollback"] = "rollback"
    tenant_id: TenantId
    channel_id: str | None
    thread_id: str | None
    from_version: int
    to_version: int
    automatic: bool
    reason: str
    actor: str
    document: Document


class Notice(BaseModel):
    """Anything else worth telling a channel (canary promoted or dropped, approvals)."""

    type: Literal["notice"] = "notice"
    tenant_id: TenantId
    channel_id: str | None
    thread_id: str | None
    document: Document


OutboundEvent = Annotated[
    AnswerReady
    | ExecutionFailed
    | Working
    | EvolutionAnnounced
    | ToolAnnounced
    | RolledBack
    | Notice,
    Field(discriminator="type"),
]


class SandboxFile(BaseModel):
    """A file the sandboxed code left in its `out/` directory."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    name: str  # relative to out/, e.g. "chart.png"
    media_type: str  # e.g. "image/png"
    data: bytes


class SandboxResult(BaseModel):
    """What a sandbox run gave back (see engine/sandbox/limits.py for the convention)."""

    stdout: str = ""
    stderr: str = ""
    value: Any = None
    error: str | None = None  # None on success
    duration: float = 0.0  # seconds, wall clock, as seen by the caller
    truncated: bool = False  # stdout or stderr was cut at the output limit
    files: list[SandboxFile] = Field(default_factory=list)  # collected from out/
    files_skipped: list[str] = Field(default_factory=list)  # "name: why", left out of `files`

    @property
    def ok(self) -> bool:
        return self.error is None


class Delivery(BaseModel):
    """What a notifier reports back: the platform message the event became (if any)."""

    ref: MessageRef | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
