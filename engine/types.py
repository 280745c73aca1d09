"""The engine's vocabulary: what adapters send in, what the engine sends out.

Adapters convert platform payloads to these types (and engine events back to
platform messages); nothing here knows about Slack, Telegram or the console.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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


def storable(text: str) -> str:
    """Text every database stores: a lone surrogate (JSON can carry one, UTF-8 can't) becomes
    U+FFFD and NUL (PostgreSQL refuses it) is dropped."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


Storable = Annotated[str, AfterValidator(storable)]  # every string an adapter sends in


class MessageRef(BaseModel):
    """Where a platform message lives, so reactions and replies find their execution."""

    channel_id: Storable
    message_id: Storable
    thread_id: Storable | None = None


class Attachment(BaseModel):
    """A file shared with a message, as the adapter fetched it (checked by engine/files)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    name: str  # the platform's name for it: untrusted, never used as a path
    data: bytes = b""
    problem: str | None = None  # why the adapter could not fetch it (too large, failed)


class InboundMessage(BaseModel):
    tenant_id: Storable
    channel_id: Storable
    user_id: Storable
    text: Storable
    message_id: Storable | None = None
    thread_id: Storable | None = None  # thread root (Slack thread_ts, Telegram topic/reply root)
    user_name: Storable | None = None
    # False: answer here, but keep announcing evolutions where they went (an API call)
    announce_here: bool = True
    attachments: list[Attachment] = Field(default_factory=list)


class InboundFeedback(BaseModel):
    """A rating or comment. Found by execution id or by the answer's platform message."""

    tenant_id: Storable
    user_id: Storable
    source: FeedbackSource
    rating: int | None = Field(default=None, ge=1, le=5)
    comment: Storable | None = None
    category: FeedbackCategory | None = None
    suggestion: Storable | None = None  # what the answer should have been, if the user said
    from_admin: bool = False  # given by a workspace/chat admin (their requests reach further)
    retract: bool = False  # a removed reaction
    execution_id: int | None = None
    answer_ref: MessageRef | None = None


class InboundCommand(BaseModel):
    tenant_id: Storable
    user_id: Storable
    name: Storable
    args: list[Storable] = Field(default_factory=list)
    channel_id: Storable | None = None
    is_admin: bool = False  # decided by the adapter from platform roles or EVOBOT_ADMINS
    # a file sent with the command where the platform allows it (`import`: an agent file)
    attachments: list[Attachment] = Field(default_factory=list)


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


class SandboxFile(BaseModel):
    """A file made by sandboxed code (left in its `out/` directory) or posted by the engine."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    name: str  # a plain file name, e.g. "chart.png"
    media_type: str  # e.g. "image/png"
    data: bytes


class AnswerDelta(BaseModel):
    """An answer while it is being written. `text` is everything so far (not the increment),
    so a notifier may skip deltas to keep to its platform's pace and lose nothing; the
    `AnswerReady` that follows always carries the whole answer."""

    type: Literal["answer_delta"] = "answer_delta"
    tenant_id: TenantId
    execution_id: int
    channel_id: str
    thread_id: str | None
    reply_to: str | None
    user_id: str
    text: str
    # the partial message an earlier, interrupted attempt left: edit it, don't post another
    replaces: MessageRef | None = None


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
    # the streamed partial message (this attempt's or an interrupted one's): finish that one
    replaces: MessageRef | None = None
    files: list[SandboxFile] = Field(default_factory=list)  # what the agent's code made


class ExecutionFailed(BaseModel):
    type: Literal["execution_failed"] = "execution_failed"
    tenant_id: TenantId
    execution_id: int
    channel_id: str
    thread_id: str | None
    reply_to: str | None
    user_id: str
    reason: str
    replaces: MessageRef | None = None  # a partial answer left by the stream: say it there


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


class FileShared(BaseModel):
    """A file posted to a channel (an exported agent, a report), with a short caption."""

    type: Literal["file"] = "file"
    tenant_id: TenantId
    channel_id: str | None
    thread_id: str | None
    file: SandboxFile
    caption: str = ""


class Notice(BaseModel):
    """Anything else worth telling a channel (canary promoted or dropped, approvals)."""

    type: Literal["notice"] = "notice"
    tenant_id: TenantId
    channel_id: str | None
    thread_id: str | None
    document: Document


OutboundEvent = Annotated[
    AnswerReady
    | AnswerDelta
    | ExecutionFailed
    | Working
    | EvolutionAnnounced
    | ToolAnnounced
    | RolledBack
    | FileShared
    | Notice,
    Field(discriminator="type"),
]


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
    failed: bool = False  # the platform could not be reached (its notifier raised)
