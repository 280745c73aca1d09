"""Tenant-scoped data access. A `TenantRepo` can only see its own tenant's rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Exists,
    Row,
    and_,
    case,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from engine.storage.models import (
    Agent,
    AgentVersion,
    Evolution,
    Execution,
    Feedback,
    Label,
    LabelMove,
    Tenant,
    Tool,
    utcnow,
)
from engine.types import (
    AgentVersionView,
    ExecutionStatus,
    PrivacyMode,
    StructuredPrompt,
    TenantId,
    tenant_platform,
)

ACTIVE = "active"
CANARY = "canary"


class StaleLabel(Exception):
    """The label moved since the caller read it (optimistic concurrency)."""


@dataclass(frozen=True)
class Serving:
    """What picks the version that answers a message: cached by the ingress
    (engine/ingress.py) until `serving_changed` says otherwise."""

    active: int
    canary: int | None
    audience: frozenset[str]


@dataclass(frozen=True)
class RatingStats:
    version: int
    count: int
    average: float
    positives: int  # ratings >= 4

    @property
    def negatives(self) -> int:
        return self.count - self.positives


@dataclass(frozen=True)
class RatingTarget:
    """What recording a rating needs to know first."""

    execution: Execution
    earlier: Feedback | None  # the same user's rating of it, if any
    evolution_paused: bool


def version_view(row: AgentVersion) -> AgentVersionView:
    return AgentVersionView(
        tenant_id=row.tenant_id,
        version=row.version,
        prompt=StructuredPrompt.model_validate(row.prompt),
        model=row.model,
        temperature=row.temperature,
        tools=list(row.tools or []),
        parent_version=row.parent_version,
        created_by=row.created_by,
        rationale=row.rationale,
        created_at=row.created_at,
    )


class TenantRepo:
    def __init__(self, session: AsyncSession, tenant_id: TenantId) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self._agent_id: int | None = None
        # a label moved: caches in other processes are stale once this transaction commits
        # (Runtime.repo tells them)
        self.serving_changed = False

    # --- tenant and agent ---------------------------------------------------

    async def tenant(self) -> Tenant | None:
        return await self.session.get(Tenant, self.tenant_id)

    async def ensure_tenant(
        self, *, prompt: StructuredPrompt, model: str, temperature: float
    ) -> Tenant:
        """Create the tenant with agent v1 active, once; safe under races."""
        existing = await self.tenant()
        if existing is not None:
            return existing
        try:
            async with self.session.begin_nested():
                await self._create_tenant_with_seed(prompt, model, temperature)
        except IntegrityError:
            pass  # another process created it first
        tenant_row = await self.tenant()
        assert tenant_row is not None
        return tenant_row

    async def _create_tenant_with_seed(
        self, prompt: StructuredPrompt, model: str, temperature: float
    ) -> None:
        self.session.add(Tenant(id=self.tenant_id, platform=tenant_platform(self.tenant_id)))
        await self.session.flush()  # the agent's foreign key needs the tenant row
        agent = Agent(tenant_id=self.tenant_id)
        self.session.add(agent)
        await self.session.flush()
        self.session.add(AgentVersion(
            tenant_id=self.tenant_id, agent_id=agent.id, version=1, prompt=prompt.model_dump(),
            model=model, temperature=temperature, tools=[], parent_version=None,
            created_by="seed", rationale="initial version",
        ))
        self.session.add(Label(agent_id=agent.id, name=ACTIVE, tenant_id=self.tenant_id, version=1))
        self.session.add(LabelMove(
            tenant_id=self.tenant_id, agent_id=agent.id, label=ACTIVE, from_version=None,
            to_version=1, reason="seed",
        ))

    def _agent(self) -> Any:
        """This tenant's agent in a query: its id once known, else a subquery — one
        statement rather than a lookup first."""
        if self._agent_id is not None:
            return self._agent_id
        return select(Agent.id).where(Agent.tenant_id == self.tenant_id).scalar_subquery()

    async def agent_id(self) -> int:
        if self._agent_id is None:
            self._agent_id = await self.session.scalar(
                select(Agent.id).where(Agent.tenant_id == self.tenant_id)
            )
            if self._agent_id is None:
                raise LookupError(f"tenant {self.tenant_id} has no agent")
        return self._agent_id

    async def set_tenant_fields(self, **values: Any) -> None:
        await self.session.execute(
            update(Tenant).where(Tenant.id == self.tenant_id).values(**values)
        )

    # --- versions and labels ------------------------------------------------

    async def label(self, name: str) -> int | None:
        return await self.session.scalar(
            select(Label.version).where(
                Label.agent_id == self._agent(), Label.name == name
            )
        )

    async def set_home_channel(self, channel_id: str) -> None:
        """Where the tenant was last addressed (announcements go there); a write only when
        it moves."""
        await self.session.execute(
            update(Tenant)
            .where(Tenant.id == self.tenant_id,
                   Tenant.home_channel_id.is_distinct_from(channel_id))
            .values(home_channel_id=channel_id)
        )

    async def serving(self) -> Serving:
        """The active and canary labels, in one query."""
        found = await self.existing_serving()
        if found is None:
            raise LookupError(f"{self.tenant_id} has no agent yet")
        return found

    async def existing_serving(self) -> Serving | None:
        """The active and canary labels, in one query; None for a tenant not created yet
        (every created tenant's agent has an active version)."""
        rows = await self.session.execute(
            select(Label.name, Label.version, Label.audience)
            .where(Label.agent_id == self._agent(), Label.name.in_((ACTIVE, CANARY)))
        )
        labels = {name: (version, audience) for name, version, audience in rows}
        if ACTIVE not in labels:
            return None
        active, _ = labels[ACTIVE]
        canary, audience = labels.get(CANARY, (None, None))
        return Serving(active=active, canary=canary, audience=frozenset(audience or ()))

    async def label_row(self, name: str) -> Label | None:
        return await self.session.scalar(
            select(Label).where(Label.agent_id == self._agent(), Label.name == name)
        )

    async def version(self, number: int) -> AgentVersionView | None:
        row = await self.session.scalar(
            select(AgentVersion).where(
                AgentVersion.agent_id == self._agent(), AgentVersion.version == number
            )
        )
        return version_view(row) if row else None

    async def version_and_privacy(self, number: int) -> tuple[AgentVersionView | None, str]:
        """A version, and the tenant's privacy mode, in one statement (an answer's job needs
        both)."""
        found = (await self.session.execute(
            select(AgentVersion, Tenant.privacy_mode)
            .join(Tenant, Tenant.id == AgentVersion.tenant_id)
            .where(AgentVersion.agent_id == self._agent(), AgentVersion.version == number)
        )).first()
        return (version_view(found[0]), found[1]) if found else (None, PrivacyMode.ISOLATED)

    async def active_version(self) -> AgentVersionView:
        """The version the active label points at, in one statement."""
        row = await self.session.scalar(
            select(AgentVersion)
            .join(Label, and_(Label.agent_id == AgentVersion.agent_id,
                              Label.version == AgentVersion.version))
            .where(Label.agent_id == self._agent(), Label.name == ACTIVE)
        )
        assert row is not None, "every agent has an active label"
        return version_view(row)

    async def versions(self, limit: int = 10) -> list[AgentVersionView]:
        rows = await self.session.scalars(
            select(AgentVersion)
            .where(AgentVersion.agent_id == self._agent())
            .order_by(AgentVersion.version.desc())
            .limit(limit)
        )
        return [version_view(r) for r in rows]

    async def latest_version_number(self) -> int:
        """The newest version's number; the agent's id comes with it (one statement), for
        the rows written next."""
        newest = (select(func.max(AgentVersion.version))
                  .where(AgentVersion.agent_id == Agent.id).scalar_subquery())
        found = (await self.session.execute(
            select(Agent.id, newest).where(Agent.tenant_id == self.tenant_id)
        )).first()
        if found is None:
            raise LookupError(f"tenant {self.tenant_id} has no agent")
        self._agent_id = found[0]
        return int(found[1] or 0)

    async def create_version(
        self,
        *,
        prompt: StructuredPrompt,
        model: str,
        temperature: float,
        tools: list[str],
        parent_version: int,
        created_by: str,
        rationale: str,
    ) -> int:
        number = await self.latest_version_number() + 1
        self.session.add(
            AgentVersion(
                tenant_id=self.tenant_id,
                agent_id=await self.agent_id(),
                version=number,
                prompt=prompt.model_dump(),
                model=model,
                temperature=temperature,
                tools=tools,
                parent_version=parent_version,
                created_by=created_by,
                rationale=rationale,
            )
        )
        await self.session.flush()
        return number

    async def move_label(
        self,
        name: str,
        to_version: int | None,
        *,
        reason: str,
        actor: str = "",
        note: str = "",
        expect: int | object | None = ...,
    ) -> int | None:
        """Point `name` at `to_version` (None removes it). Returns the previous version.

        With `expect`, fails with StaleLabel if the label no longer points there: the
        optimistic check that keeps concurrent promotions from overwriting each other.
        """
        self.serving_changed = True
        row = await self.label_row(name)
        previous = row.version if row else None
        if expect is not ... and previous != expect:
            raise StaleLabel(f"{name} is v{previous}, expected v{expect}")
        agent_id = await self.agent_id()
        await self._point_label(agent_id, name, row, to_version)
        self.session.add(LabelMove(
            tenant_id=self.tenant_id, agent_id=agent_id, label=name, from_version=previous,
            to_version=to_version, reason=reason, actor=actor, note=note,
        ))
        await self.session.flush()
        return previous

    async def _point_label(
        self, agent_id: int, name: str, row: Label | None, to_version: int | None
    ) -> None:
        """Delete, create or move the label row; a move is guarded by its previous version."""
        if to_version is None:
            if row is not None:
                await self.session.delete(row)
            return
        if row is None:
            self.session.add(
                Label(agent_id=agent_id, name=name, tenant_id=self.tenant_id, version=to_version)
            )
            return
        result = await self.session.execute(
            update(Label)
            .where(Label.agent_id == agent_id, Label.name == name, Label.version == row.version)
            .values(version=to_version, moved_at=utcnow())
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleLabel(f"{name} moved concurrently")

    async def set_label_audience(self, name: str, audience: list[str] | None) -> None:
        """The users a label always serves (the canary's askers)."""
        self.serving_changed = True
        await self.session.execute(
            update(Label)
            .where(Label.agent_id == await self.agent_id(), Label.name == name)
            .values(audience=audience)
        )

    async def label_moves(self, limit: int = 20) -> list[LabelMove]:
        rows = await self.session.scalars(
            select(LabelMove)
            .where(LabelMove.tenant_id == self.tenant_id)
            .order_by(LabelMove.id.desc())
            .limit(limit)
        )
        return list(rows)

    async def last_promotion_at(self, version: int) -> datetime | None:
        return await self.session.scalar(
            select(func.max(LabelMove.at)).where(
                LabelMove.tenant_id == self.tenant_id,
                LabelMove.label == ACTIVE,
                LabelMove.to_version == version,
            )
        )

    # --- executions -----------------------------------------------------------

    async def add_execution(self, **values: Any) -> Execution | None:
        """Insert; None when the same platform message was already recorded (a retry)."""
        row = Execution(tenant_id=self.tenant_id, **values)
        try:
            async with self.session.begin_nested():
                self.session.add(row)
                await self.session.flush()
        except IntegrityError:
            return None
        return row

    async def execution(self, execution_id: int) -> Execution | None:
        return await self.session.scalar(
            select(Execution).where(
                Execution.id == execution_id, Execution.tenant_id == self.tenant_id
            )
        )

    async def update_execution(self, execution_id: int, **values: Any) -> None:
        await self._update(Execution, execution_id, values)

    async def _update(self, model: type[Execution] | type[Evolution], row_id: int,
                      values: Mapping[str, Any]) -> None:
        """Set columns of one of the tenant's rows in one statement (no read first; a row
        this session loaded before keeps its old values)."""
        await self.session.execute(
            update(model)
            .where(model.id == row_id, model.tenant_id == self.tenant_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def rating_target(
        self, user_id: str, *, execution_id: int | None = None,
        answer: tuple[str, str] | None = None,
    ) -> RatingTarget | None:
        """The execution a user rates — by id, by its answer's (channel, message) on the
        platform, or else the user's latest — with their earlier feedback on it, if any, and
        whether the tenant paused evolution, in one statement."""
        if execution_id is not None:
            which = [Execution.id == execution_id]
        elif answer is not None:
            which = [Execution.answer_channel_id == answer[0],
                     Execution.answer_message_id == answer[1]]
        else:
            which = [Execution.user_id == user_id]
        theirs = and_(Feedback.tenant_id == self.tenant_id,
                      Feedback.execution_id == Execution.id, Feedback.user_id == user_id)
        found = (await self.session.execute(
            select(Execution, Feedback, Tenant.evolution_paused)
            .join(Tenant, Tenant.id == Execution.tenant_id).outerjoin(Feedback, theirs)
            .where(Execution.tenant_id == self.tenant_id, *which)
            .order_by(Execution.id.desc()).limit(1)
        )).first()
        return RatingTarget(found[0], found[1], bool(found[2])) if found else None

    async def thread_history(self, channel_id: str, thread_id: str, limit: int = 6) -> list[
        Execution
    ]:
        rows = await self.session.scalars(
            select(Execution)
            .where(
                Execution.tenant_id == self.tenant_id,
                Execution.channel_id == channel_id,
                Execution.thread_id == thread_id,
                Execution.status == ExecutionStatus.SUCCEEDED,
            )
            .order_by(Execution.id.desc())
            .limit(limit)
        )
        return list(reversed(list(rows)))

    async def pending_answers(self, channel_id: str, thread_id: str | None,
                              up_to: int | None = None) -> list[Execution]:
        """The thread's answers still awaiting redelivery, oldest first (up to an id)."""
        query = select(Execution).where(
            *self._held_in_thread(Execution, channel_id, thread_id))
        if up_to is not None:
            query = query.where(Execution.id <= up_to)
        return list(await self.session.scalars(query.order_by(Execution.id)))

    async def store_answer(self, execution: Execution, **values: Any) -> bool:
        """Set the answered execution's columns; whether it must queue behind a held answer
        (`held_before`) — one statement for both."""
        result = await self.session.execute(
            update(Execution)
            .where(Execution.id == execution.id, Execution.tenant_id == self.tenant_id)
            .values(**values)
            .returning(self._held_before(execution))
            .execution_options(synchronize_session=False)
        )
        return bool(result.scalar_one())

    async def held_before(self, execution: Execution) -> bool:
        """Whether an earlier answer of the execution's thread still awaits redelivery (a
        later answer queues behind it rather than overtake it)."""
        return bool(await self.session.scalar(select(self._held_before(execution))))

    def _held_before(self, execution: Execution) -> Exists:
        earlier = aliased(Execution)
        return exists().where(
            *self._held_in_thread(earlier, execution.channel_id, execution.thread_id),
            earlier.id < execution.id,
        )

    def _held_in_thread(self, model: Any, channel_id: str, thread_id: str | None
                        ) -> list[ColumnElement[bool]]:
        """The tenant's answers of one thread that await redelivery."""
        return [
            model.tenant_id == self.tenant_id,
            model.channel_id == channel_id,
            model.thread_id.is_(None) if thread_id is None else model.thread_id == thread_id,
            model.answer_pending.is_(True),
        ]

    # --- feedback ---------------------------------------------------------------

    async def feedback_for(self, execution_id: int, user_id: str) -> Feedback | None:
        return await self.session.scalar(
            select(Feedback).where(
                Feedback.tenant_id == self.tenant_id,
                Feedback.execution_id == execution_id,
                Feedback.user_id == user_id,
            )
        )

    def adopt(self, row: Feedback) -> Feedback:
        """A row read in another session (`rating_target`), changed and written in this one."""
        self.session.add(row)
        return row

    async def add_feedback(self, **values: Any) -> Feedback:
        row = Feedback(tenant_id=self.tenant_id, **values)
        self.session.add(row)
        await self.session.flush()
        return row

    async def unused_feedback(self) -> list[tuple[Feedback, Execution]]:
        """Live ratings not yet consumed by an evolution, on successful executions only."""
        rows = await self.session.execute(
            select(Feedback, Execution)
            .join(Execution, Execution.id == Feedback.execution_id)
            .where(*self._unused())
            .order_by(Feedback.id)
        )
        return [(f, e) for f, e in rows]

    async def unused_feedback_count(self) -> int:
        """How many ratings wait for an evolution (the trigger's check; no rows loaded)."""
        count = await self.session.scalar(
            select(func.count(Feedback.id))
            .join(Execution, Execution.id == Feedback.execution_id)
            .where(*self._unused())
        )
        return int(count or 0)

    def _unused(self) -> tuple[ColumnElement[bool], ...]:
        return (
            Feedback.tenant_id == self.tenant_id,
            Feedback.retracted.is_(False),
            Feedback.used_in_evolution.is_(None),
            Execution.status == ExecutionStatus.SUCCEEDED,
        )

    async def positive_examples(self, limit: int = 3) -> list[tuple[Feedback, Execution]]:
        rows = await self.session.execute(
            select(Feedback, Execution)
            .join(Execution, Execution.id == Feedback.execution_id)
            .where(
                Feedback.tenant_id == self.tenant_id,
                Feedback.retracted.is_(False),
                Feedback.rating >= 4,
                Execution.status == ExecutionStatus.SUCCEEDED,
            )
            .order_by(Feedback.id.desc())
            .limit(limit)
        )
        return [(f, e) for f, e in rows]

    async def live_feedback_with_versions(self) -> list[tuple[Feedback, int]]:
        """Every live rating with the version that gave the answer (an export with feedback)."""
        rows = await self.session.execute(
            select(Feedback, Execution.version)
            .join(Execution, Execution.id == Feedback.execution_id)
            .where(Feedback.tenant_id == self.tenant_id, Feedback.retracted.is_(False))
            .order_by(Feedback.id)
        )
        return [(f, int(v)) for f, v in rows]

    async def mark_feedback_used(
        self, read: Mapping[int, datetime], evolution_id: int
    ) -> list[int]:
        """Mark feedback consumed by an evolution — each row only if it is still as the
        evolution read it (`read`: id → updated_at then). A comment that arrived meanwhile
        stays unused for the next evolution. Returns the ids marked."""
        marked = []
        for feedback_id, updated_at in read.items():
            result = await self.session.execute(
                update(Feedback)
                .where(Feedback.tenant_id == self.tenant_id, Feedback.id == feedback_id,
                       Feedback.updated_at == updated_at)
                .values(used_in_evolution=evolution_id)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                marked.append(feedback_id)
        return marked

    async def mark_feedback_unused(self, feedback_ids: list[int]) -> None:
        """Give feedback back to the next evolution (after an automatic rollback)."""
        if feedback_ids:
            await self.session.execute(
                update(Feedback)
                .where(Feedback.tenant_id == self.tenant_id, Feedback.id.in_(feedback_ids))
                .values(used_in_evolution=None)
            )

    async def version_ratings(
        self, version: int, *, since: datetime | None = None, limit: int | None = None
    ) -> list[tuple[int, int]]:
        """(feedback id, rating) of the live ratings of a version's answers, newest first."""
        query = (
            select(Feedback.id, Feedback.rating)
            .join(Execution, Execution.id == Feedback.execution_id)
            .where(
                Feedback.tenant_id == self.tenant_id,
                Execution.version == version,
                Feedback.retracted.is_(False),
                Feedback.rating.is_not(None),
                Execution.status == ExecutionStatus.SUCCEEDED,
            )
            .order_by(Feedback.updated_at.desc(), Feedback.id.desc())
        )
        if since is not None:
            query = query.where(Feedback.updated_at >= since)
        if limit is not None:
            query = query.limit(limit)
        rows = await self.session.execute(query)
        return [(int(i), int(r)) for i, r in rows if r is not None]

    async def rating_stats(self, since: datetime | None = None) -> dict[int, RatingStats]:
        """Live ratings per agent version (optionally only those given after `since`)."""
        query = (
            select(
                Execution.version,
                func.count(Feedback.id),
                func.avg(Feedback.rating),
                func.sum(case((Feedback.rating >= 4, 1), else_=0)),
            )
            .join(Execution, Execution.id == Feedback.execution_id)
            .where(
                Feedback.tenant_id == self.tenant_id,
                Feedback.retracted.is_(False),
                Feedback.rating.is_not(None),
                Execution.status == ExecutionStatus.SUCCEEDED,
            )
            .group_by(Execution.version)
        )
        if since is not None:
            query = query.where(Feedback.updated_at >= since)
        rows = await self.session.execute(query)
        return {
            int(v): RatingStats(int(v), int(n), float(avg or 0), int(pos or 0))
            for v, n, avg, pos in rows
        }

    async def execution_summaries(
        self,
    ) -> Sequence[Row[int, int, str, str, str | None, str, float, float]]:
        """Every execution's progress columns, oldest first (engine/progress.py)."""
        result = await self.session.execute(
            select(
                Execution.id, Execution.version, Execution.status, Execution.channel_id,
                Execution.thread_id, Execution.user_id, Execution.duration_s,
                Execution.cost_usd,
            )
            .where(Execution.tenant_id == self.tenant_id)
            .order_by(Execution.id)
        )
        return result.all()

    async def live_ratings(self) -> list[tuple[int, int]]:
        """(execution id, rating) of every live rating."""
        rows = await self.session.execute(
            select(Feedback.execution_id, Feedback.rating).where(
                Feedback.tenant_id == self.tenant_id,
                Feedback.retracted.is_(False),
                Feedback.rating.is_not(None),
            )
        )
        return [(int(e), int(r)) for e, r in rows if r is not None]

    async def evolution_count(self) -> int:
        count = await self.session.scalar(
            select(func.count(Evolution.id)).where(Evolution.tenant_id == self.tenant_id)
        )
        return int(count or 0)

    async def has_versions_or_tools(self, tool_statuses: tuple[str, ...]) -> bool:
        """A version after the first, or a tool in one of `tool_statuses` (one statement)."""
        later_version = select(AgentVersion.id).where(
            AgentVersion.tenant_id == self.tenant_id, AgentVersion.version > 1
        )
        tool = select(Tool.id).where(
            Tool.tenant_id == self.tenant_id, Tool.status.in_(tool_statuses)
        )
        return bool(await self.session.scalar(select(or_(exists(later_version), exists(tool)))))

    async def version_count(self) -> int:
        count = await self.session.scalar(
            select(func.count(AgentVersion.id)).where(AgentVersion.tenant_id == self.tenant_id)
        )
        return int(count or 0)

    # --- evolutions -------------------------------------------------------------

    async def add_evolution(self, **values: Any) -> Evolution:
        row = Evolution(tenant_id=self.tenant_id, **values)
        self.session.add(row)
        await self.session.flush()
        return row

    async def update_evolution(self, evolution_id: int, **values: Any) -> None:
        await self._update(Evolution, evolution_id, values)

    async def evolution(self, evolution_id: int) -> Evolution | None:
        return await self.session.scalar(
            select(Evolution).where(
                Evolution.id == evolution_id, Evolution.tenant_id == self.tenant_id
            )
        )

    async def evolutions(self, limit: int = 10) -> list[Evolution]:
        rows = await self.session.scalars(
            select(Evolution)
            .where(Evolution.tenant_id == self.tenant_id)
            .order_by(Evolution.id.desc())
            .limit(limit)
        )
        return list(rows)

    async def objectives_and_comments(
        self, feedback_ids: list[int]
    ) -> list[tuple[str, str | None]]:
        """The objective and comment behind each of these feedback rows."""
        rows = await self.session.execute(
            select(Execution.objective, Feedback.comment)
            .join(Feedback, Feedback.execution_id == Execution.id)
            .where(Feedback.tenant_id == self.tenant_id, Feedback.id.in_(feedback_ids))
        )
        return [(objective, comment) for objective, comment in rows]

    # --- tools --------------------------------------------------------------------

    async def add_tool(self, row: Tool) -> Tool:
        if row.tenant_id != self.tenant_id:
            raise ValueError("a tool row of another tenant")
        self.session.add(row)
        await self.session.flush()
        return row

    async def tools(self, statuses: tuple[str, ...] | None = None) -> list[Tool]:
        query = select(Tool).where(Tool.tenant_id == self.tenant_id).order_by(Tool.name)
        if statuses:
            query = query.where(Tool.status.in_(statuses))
        return list(await self.session.scalars(query))

    # --- recent activity (the REST API and the dashboard) -------------------------------------

    async def recent_executions(self, limit: int = 50) -> list[Execution]:
        rows = await self.session.scalars(
            select(Execution)
            .where(Execution.tenant_id == self.tenant_id)
            .order_by(Execution.id.desc())
            .limit(limit)
        )
        return list(rows)

    async def recent_feedback(self, limit: int = 50) -> list[Feedback]:
        rows = await self.session.scalars(
            select(Feedback)
            .where(Feedback.tenant_id == self.tenant_id, Feedback.retracted.is_(False))
            .order_by(Feedback.id.desc())
            .limit(limit)
        )
        return list(rows)
