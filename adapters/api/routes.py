"""The seed's REST API under /v1. A key sees only its own tenant's agent: any other agent or
execution id answers 404, exactly as if it did not exist."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.websockets import WebSocketDisconnect

from adapters.api import views
from adapters.api.auth import SESSION_COOKIE, bearer_secret
from adapters.api.context import Agent, Api, agent_of, api_of, caller, rollback_to
from adapters.api.events import API_CHANNEL, FINISHED, next_for, wire_event
from adapters.api.schemas import (
    AgentHistory,
    AgentInstance,
    CreateAgent,
    CreatedAgent,
    Execute,
    ExecutionResult,
    FeedbackAcknowledgment,
    ImportedAgent,
    MetaAgentState,
    Problem,
    Rollback,
    SubmitFeedback,
    VersionDetail,
    VersionDiff,
)
from adapters.api.uploads import (
    EXECUTE_BODY_DOCS,
    ExecuteBody,
    ExecuteRequest,
    file_links,
    unusable_files,
)
from engine.portable import MAX_FILE_BYTES, ImportRefused
from engine.portable_export import FeedbackStaysHome, export_agent
from engine.portable_import import import_agent
from engine.prompt import default_prompt
from engine.storage.api_keys import KeyInfo, KeyRole, create_key
from engine.storage.files import OUT, execution_files
from engine.types import (
    ExecutionStatus,
    FeedbackSource,
    InboundFeedback,
    InboundMessage,
    PrivacyMode,
    StructuredPrompt,
    TenantId,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing, unknown or revoked API key"},
    404: {"model": Problem, "description": "no such agent, execution or version for this key"},
    429: {"model": Problem, "description": "rate limit; see Retry-After"},
}
router = APIRouter(prefix="/v1", responses=ERRORS)
Caller = Annotated[KeyInfo, Depends(caller)]


AgentOf = Annotated[Agent, Depends(agent_of)]
ApiOf = Annotated[Api, Depends(api_of)]


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, f"no such {what}")


# --- agents -------------------------------------------------------------------------------


def _seed_prompt(objective: str) -> StructuredPrompt:
    prompt = default_prompt()
    return prompt.model_copy(update={"persona": f"{prompt.persona.strip()}\n\n"
                                                f"You were set up for: {objective.strip()}"})


@router.post("/agents", status_code=201, response_model=CreatedAgent,
             responses={403: {"model": Problem}, 409: {"model": Problem}})
async def create_agent(body: CreateAgent, key: Caller, api: ApiOf) -> CreatedAgent:
    """A new agent `api:<client_id>` (needs an operator key); answers with an admin key of
    the new agent, shown once. `collective` bootstraps it from other agents' shared
    patterns (validated like any evolution); `minimal` shares nothing."""
    if key.role is not KeyRole.OPERATOR:
        raise HTTPException(403, "creating agents needs an operator key "
                                 "(`evobot apikey create --operator`)")
    tenant_id, rt = views.api_tenant(body.client_id), api.service.rt
    collective = body.bootstrap_mode == "collective"
    async with rt.repo(tenant_id) as repo:
        if await repo.tenant() is not None:
            raise HTTPException(409, f"agent {tenant_id} exists")
        await repo.ensure_tenant(prompt=_seed_prompt(body.initial_objective),
                                 model=rt.settings.llm_model, temperature=rt.settings.temperature)
        await repo.set_tenant_fields(
            name=body.client_id, domain=body.domain or "general",
            privacy_mode=(PrivacyMode.COLLECTIVE if collective else PrivacyMode.ISOLATED).value)
        new = await create_key(repo.session, tenant_id, KeyRole.ADMIN,
                               name="created with the agent", created_by=key.actor)
        instance = await views.agent_instance(repo)
    if collective:
        await rt.queue.enqueue_evolution(tenant_id, trigger="bootstrap")
    return CreatedAgent(**instance.model_dump(), api_key=new.secret)


@router.get("/agents/{agent_id}/state", response_model=MetaAgentState)
async def get_agent_state(agent: AgentOf, api: ApiOf) -> MetaAgentState:
    """The active version, its configuration and tools, recent history and the learning
    metrics (per version: ratings, success rate, first-try success, latency, cost)."""
    async with api.service.rt.repo(agent.tenant_id) as repo:
        return await views.agent_state(repo)


@router.get("/agents/{agent_id}/history", response_model=AgentHistory)
async def get_agent_history(
    agent: AgentOf, api: ApiOf, limit: Annotated[int, Query(ge=1, le=500)] = 50,
    include_executions: bool = True, include_evolutions: bool = True,
) -> AgentHistory:
    async with api.service.rt.repo(agent.tenant_id) as repo:
        return await views.agent_history(repo, limit, include_executions=include_executions,
                                         include_evolutions=include_evolutions)


@router.get("/agents/{agent_id}/versions/{number}", response_model=VersionDetail)
async def get_version(agent: AgentOf, api: ApiOf, number: int) -> VersionDetail:
    async with api.service.rt.repo(agent.tenant_id) as repo:
        detail = await views.version_detail(repo, number)
    if detail is None:
        raise _not_found("version")
    return detail


@router.get("/agents/{agent_id}/diff", response_model=VersionDiff)
async def get_diff(
    agent: AgentOf, api: ApiOf,
    from_version: Annotated[int | None, Query(alias="from", ge=1)] = None,
    to_version: Annotated[int | None, Query(alias="to", ge=1)] = None,
) -> VersionDiff:
    """The prompt diff between two versions (default: the active one against its parent)."""
    async with api.service.rt.repo(agent.tenant_id) as repo:
        to = to_version or (await repo.active_version()).version
        target = await repo.version(to)
        start = from_version or (target.parent_version if target else None) or to
        diff = await views.version_diff(repo, start, to)
    if diff is None:
        raise _not_found("version")
    return diff


@router.post("/agents/{agent_id}/rollback", response_model=AgentInstance,
             responses={403: {"model": Problem}})
async def rollback_agent(body: Rollback, agent: AgentOf, api: ApiOf) -> AgentInstance:
    """Make an earlier version active (admin keys). The rollback is announced where the
    agent announces its evolutions, and on the stream."""
    if not agent.key.is_admin:
        raise HTTPException(403, "rolling back needs an admin key")
    await rollback_to(api, agent.tenant_id, agent.key, body.target_version)
    async with api.service.rt.repo(agent.tenant_id) as repo:
        return await views.agent_instance(repo)


@router.get("/agents/{agent_id}/export", responses={403: {"model": Problem}},
            response_class=Response)
async def export_agent_file(agent: AgentOf, api: ApiOf,
                            with_feedback: bool = False) -> Response:
    """The agent as a portable file (docs/agent-export.schema.json), admin keys only; users'
    feedback only when asked and the agent's privacy mode lets it leave."""
    if not agent.key.is_admin:
        raise HTTPException(403, "exporting an agent needs an admin key")
    try:
        exported = await export_agent(api.service.rt, agent.tenant_id,
                                      with_feedback=with_feedback)
    except FeedbackStaysHome as exc:
        raise HTTPException(403, str(exc)) from exc
    file = exported.file()
    return Response(file.data, media_type=file.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{file.name}"'})


@router.post("/agents/{agent_id}/import", response_model=ImportedAgent,
             responses={403: {"model": Problem}, 422: {"model": Problem}})
async def import_agent_file(request: Request, agent: AgentOf, api: ApiOf) -> ImportedAgent:
    """An agent file (the body) becomes one new, announced version; refused files change
    nothing and answer 422 with the reason."""
    if not agent.key.is_admin:
        raise HTTPException(403, "importing an agent needs an admin key")
    data = bytearray()
    async for chunk in request.stream():  # stop reading past the cap
        data += chunk
        if len(data) > MAX_FILE_BYTES:
            break
    try:
        done = await import_agent(api.service.rt, agent.tenant_id, bytes(data),
                                  actor=f"api:{agent.key.prefix}", channel_id=None)
    except ImportRefused as exc:
        raise HTTPException(422, f"nothing was imported: {exc}") from exc
    return ImportedAgent(from_version=done.from_version, to_version=done.to_version,
                         evolution_id=done.evolution_id, tools=done.kept,
                         left_out=done.left_out, learnings=done.learnings)


# --- executions ---------------------------------------------------------------------------


def _objective(body: Execute) -> str:
    if not body.context:
        return body.objective
    context = json.dumps(body.context, ensure_ascii=False, indent=1)
    return f"{body.objective}\n\nContext:\n{context}"


def _message(agent: Agent, body: ExecuteRequest) -> InboundMessage:
    return InboundMessage(
        tenant_id=agent.tenant_id, channel_id=API_CHANNEL,
        user_id=body.user_id or agent.key.actor, text=_objective(body),
        message_id=f"api-{uuid.uuid4().hex}", thread_id=body.thread_id,
        # an API call on a Slack or Telegram agent must not move its announcements here
        announce_here=agent.tenant_id.startswith(f"{views.API_PLATFORM}:"),
        attachments=body.attachments,
    )


async def _result(api: Api, tenant_id: TenantId, execution_id: int) -> ExecutionResult | None:
    async with api.service.rt.repo(tenant_id) as repo:
        row = await repo.execution(execution_id)
        if row is None:
            return None
        return views.execution_result(row, file_links(await execution_files(repo, row.id, OUT)))


def _finished(result: ExecutionResult) -> bool:
    return result.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)


@router.post("/agents/{agent_id}/execute", response_model=ExecutionResult,
             responses={202: {"model": ExecutionResult, "description": "still running: "
                              "GET the `url` (/v1/executions/{id}) later"},
                        200: {"content": {"text/event-stream": {}}}},
             openapi_extra=EXECUTE_BODY_DOCS)
async def execute_objective(body: ExecuteBody, agent: AgentOf, api: ApiOf) -> Any:
    """Queue the objective for the worker and wait for the answer (up to the server's
    EVOBOT_API_WAIT_S, else 202). `stream: true` answers with Server-Sent Events instead:
    queued, started, answer_delta… (the answer so far, while the model writes it),
    tool_call…, then answer (or execution_failed, or timeout). Files go as multipart parts
    (adapters/api/uploads.py); the files the answer brings are links on the result."""
    unusable = unusable_files(body)
    if unusable is not None:
        raise HTTPException(422, unusable)
    following = contextlib.AsyncExitStack()
    events = await following.enter_async_context(api.hub.follow(agent.tenant_id))
    try:
        accepted = await api.service.handle_message(_message(agent, body))
        if accepted is None:  # a fresh message id is never a redelivery: blank once stripped
            raise HTTPException(422, "the objective is empty")
    except BaseException:
        await following.aclose()
        raise
    api.settings.log_context({"execution_id": accepted.execution_id})
    deadline = asyncio.get_running_loop().time() + api.settings.wait_s
    if body.stream:
        return StreamingResponse(
            _sse(api, agent.tenant_id, accepted.execution_id, events, deadline, following),
            media_type="text/event-stream", headers={"Cache-Control": "no-store"})
    async with following:
        while (event := await next_for(events, accepted.execution_id, deadline)) is not None:
            if event["type"] in FINISHED:
                break
    result = await _result(api, agent.tenant_id, accepted.execution_id)
    assert result is not None
    code = 200 if _finished(result) else 202
    headers = {} if code == 200 else {"Location": result.url}
    return JSONResponse(result.model_dump(mode="json"), code, headers=headers)


def _sse_line(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


async def tool_call_events(api: Api, tenant_id: TenantId, execution_id: int
                           ) -> list[dict[str, Any]]:
    """The answer's tool calls, from the trace stored on the execution."""
    result = await _result(api, tenant_id, execution_id)
    calls = result.tool_calls if result is not None else []
    return [wire_event("tool_call", tenant_id, {"execution_id": execution_id,
                                                **call.model_dump()}) for call in calls]


async def expand(api: Api, event: dict[str, Any]) -> list[dict[str, Any]]:
    """An answer is preceded by its tool calls (the trace is stored with the answer)."""
    if event["type"] != "answer" or event.get("execution_id") is None:
        return [event]
    calls = await tool_call_events(api, event["tenant_id"], int(event["execution_id"]))
    return [*calls, event]


async def _sse(api: Api, tenant_id: TenantId, execution_id: int,
               events: asyncio.Queue[dict[str, Any]], deadline: float,
               following: contextlib.AsyncExitStack) -> AsyncIterator[str]:
    async with following:
        while True:
            event = await next_for(events, execution_id, deadline)
            if event is None:
                yield _sse_line(wire_event("timeout", tenant_id, {
                    "execution_id": execution_id, "url": views.execution_url(execution_id)}))
                return
            for item in await expand(api, event):
                yield _sse_line(item)
            if event["type"] in FINISHED:
                return


@router.get("/executions/{execution_id}", response_model=ExecutionResult)
async def get_execution(execution_id: int, key: Caller, api: ApiOf) -> ExecutionResult:
    result = None
    if key.tenant_id is not None:
        result = await _result(api, key.tenant_id, execution_id)
    if result is None:
        raise _not_found("execution")
    return result


# --- feedback -----------------------------------------------------------------------------


@router.post("/agents/{agent_id}/feedback", response_model=FeedbackAcknowledgment,
             responses={409: {"model": Problem, "description": "the execution didn't succeed"}})
async def submit_feedback(body: SubmitFeedback, agent: AgentOf, api: ApiOf
                          ) -> FeedbackAcknowledgment:
    """Rate an answer 1–5 (4–5 is a success), with an optional comment and category. One
    live rating per (execution, user): a newer one replaces it. A low rating with a comment,
    or enough ratings, starts an evolution."""
    result = await api.service.handle_feedback(InboundFeedback(
        tenant_id=agent.tenant_id, user_id=body.user_id or agent.key.actor,
        source=FeedbackSource.COMMAND, rating=body.rating, comment=body.comment,
        category=body.category, suggestion="; ".join(body.suggestions or []) or None,
        from_admin=agent.key.is_admin, execution_id=body.execution_id,
    ))
    if not result.recorded:
        raise _not_found("execution") if result.execution_id is None else HTTPException(
            409, result.message)
    return FeedbackAcknowledgment(
        recorded=True, execution_id=result.execution_id, rating=result.rating,
        message=result.message, evolution_queued=result.evolution_queued)


# --- the event stream ---------------------------------------------------------------------


@router.websocket("/agents/{agent_id}/stream")
async def stream_events(websocket: WebSocket, agent_id: str) -> None:
    """The agent's events as JSON `{type, data, timestamp}`: queued, started, answer_delta
    (the answer so far, in `text`), tool_call, answer, execution_failed, feedback, evolution,
    tool, rollback, notice. Authenticate with `Authorization: Bearer <key>` (or the
    dashboard's session). Closes with 4401 (no key), 4404 (not this key's agent) or 4429
    (rate limit)."""
    api: Api = websocket.app.state.api
    await websocket.accept()
    refusal = await _refusal(api, websocket, agent_id)
    if refusal is not None:
        await websocket.close(code=refusal[0], reason=refusal[1])
        return
    async with api.hub.follow(agent_id) as events:
        await websocket.send_json(wire_event("subscribed", agent_id, {"agent_id": agent_id}))
        await _relay(api, websocket, events)


async def _refusal(api: Api, websocket: WebSocket, agent_id: str) -> tuple[int, str] | None:
    key = await api.keys.by_secret(bearer_secret(websocket.headers.get("authorization")))
    if key is None:
        key = await api.keys.by_id(api.sessions.key_id(websocket.cookies.get(SESSION_COOKIE)))
    if key is None:
        return 4401, "missing or unknown API key"
    if key.tenant_id != agent_id:
        return 4404, "no such agent"
    if await api.limiter.retry_after(key.id):
        return 4429, "rate limit"
    return None


async def _relay(api: Api, websocket: WebSocket, events: asyncio.Queue[dict[str, Any]]
                 ) -> None:
    """Forward events until the client goes away."""

    async def forward() -> None:
        while True:
            for item in await expand(api, await events.get()):
                await websocket.send_json(item)

    async def until_closed() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

    tasks = [asyncio.create_task(forward()), asyncio.create_task(until_closed())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
