"""The dashboard under /dashboard: sign in with an API key (a signed, http-only session
cookie names the key), then one page per agent — the active version and its metrics, the
chart of rating and success per version, the evolution timeline with each version's diff,
the tools — and, for admin keys, Roll back with a confirmation step. Server-rendered."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from adapters.api import views
from adapters.api.auth import SESSION_COOKIE, SESSION_MAX_AGE_S
from adapters.api.chart import ChartPoint, rating_chart
from adapters.api.context import api_of, own_agent, rollback_to
from adapters.api.schemas import (
    AgentInstance,
    EvolutionView,
    MetaAgentState,
    ToolView,
    VersionMetrics,
)
from engine.prompt import unified_diff
from engine.storage.api_keys import KeyInfo
from engine.storage.repo import ACTIVE, CANARY, TenantRepo
from engine.tools.registry import OFFERED
from engine.types import AgentVersionView

router = APIRouter(prefix="/dashboard", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
VERSIONS_SHOWN = 30


def agent_url(agent_id: str) -> str:
    return f"/dashboard/agents/{quote(agent_id, safe=':')}"


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """(css class, line) for a unified diff: added, removed, hunk or context."""
    kinds = {"+": "add", "-": "del", "@": "hunk"}
    lines = []
    for line in diff.splitlines():
        head = line[:3] in ("+++", "---")
        lines.append(("meta" if head else kinds.get(line[:1], "ctx"), line))
    return lines


@dataclass
class VersionRow:
    version: AgentVersionView
    metrics: VersionMetrics | None
    diff: list[tuple[str, str]]
    active: bool
    canary: bool


@dataclass
class TimelineEntry:
    evolution: EvolutionView
    diff: list[tuple[str, str]]


@dataclass
class AgentPage:
    instance: AgentInstance
    state: MetaAgentState
    versions: list[VersionRow]
    timeline: list[TimelineEntry]
    tools: list[ToolView]
    chart: Markup


# --- loading ------------------------------------------------------------------------------


def _version_rows(versions: list[AgentVersionView], metrics: dict[int, VersionMetrics],
                  active: int | None, canary: int | None) -> list[VersionRow]:
    by_number = {v.version: v for v in versions}
    rows = []
    for v in versions:
        parent = by_number.get(v.parent_version or 0)
        diff = unified_diff(parent.prompt, v.prompt, parent.version, v.version) if parent else ""
        rows.append(VersionRow(v, metrics.get(v.version), diff_lines(diff),
                               v.version == active, v.version == canary))
    return rows


def _timeline(evolutions: list[EvolutionView], rows: list[VersionRow]) -> list[TimelineEntry]:
    diffs = {row.version.version: row.diff for row in rows}
    return [TimelineEntry(e, diffs.get(e.new_version or 0, [])) for e in evolutions]


def _chart(rows: list[VersionRow]) -> Markup:
    points = [ChartPoint(version=r.version.version, at=r.version.created_at,
                         average=r.metrics.average_rating if r.metrics else None,
                         success=r.metrics.success_rate if r.metrics else None,
                         ratings=r.metrics.ratings if r.metrics else 0)
              for r in sorted(rows, key=lambda r: r.version.version)]
    return Markup(rating_chart(points))  # built from numbers and escaped text


async def load_page(repo: TenantRepo) -> AgentPage:
    state = await views.agent_state(repo)
    instance = await views.agent_instance(repo)
    versions = await repo.versions(VERSIONS_SHOWN)
    metrics = {m.version: m for m in state.metrics.versions}
    rows = _version_rows(versions, metrics, await repo.label(ACTIVE), await repo.label(CANARY))
    evolutions = [views.evolution_view(e) for e in await repo.evolutions(VERSIONS_SHOWN)]
    tools = [views.tool_view(t) for t in await repo.tools(OFFERED)]
    return AgentPage(instance=instance, state=state, versions=rows,
                     timeline=_timeline(evolutions, rows), tools=tools, chart=_chart(rows))


# --- who is signed in ---------------------------------------------------------------------


async def signed_in(request: Request) -> KeyInfo | None:
    api = api_of(request)
    key = await api.keys.by_id(api.sessions.key_id(request.cookies.get(SESSION_COOKIE)))
    if key is not None and await api.limiter.retry_after(key.id):
        raise HTTPException(429, "rate limit exceeded", headers={"Retry-After": "60"})
    if key is not None:
        api.settings.log_context({"tenant_id": key.tenant_id, "api_key": key.prefix})
    return key


def page(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, values, status_code=status)


def to_login() -> RedirectResponse:
    return RedirectResponse("/dashboard/login", status_code=303)


# --- routes -------------------------------------------------------------------------------


@router.get("")
@router.get("/")
async def home(request: Request) -> Response:
    key = await signed_in(request)
    if key is None:
        return to_login()
    if key.tenant_id is None:
        return page(request, "operator.html", key=key, api=api_of(request))
    return RedirectResponse(agent_url(key.tenant_id), status_code=303)


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    return page(request, "login.html")


@router.post("/login")
async def login(request: Request) -> Response:
    api = api_of(request)
    form = await request.form()
    key = await api.keys.by_secret(str(form.get("api_key", "")).strip())
    if key is None:
        return page(request, "login.html", 401, error="That key is unknown or revoked.")
    response = RedirectResponse("/dashboard/", status_code=303)
    response.set_cookie(SESSION_COOKIE, api.sessions.cookie_for(key), max_age=SESSION_MAX_AGE_S,
                        httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = to_login()
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/agents/{agent_id}")
async def agent_page(request: Request, agent_id: str) -> Response:
    key = await signed_in(request)
    if key is None:
        return to_login()
    api = api_of(request)
    agent = own_agent(agent_id, key)
    async with api.service.rt.repo(agent.tenant_id) as repo:
        data = await load_page(repo)
    return page(request, "agent.html", key=key, data=data, token=api.sessions.form_token(key),
                agent_url=agent_url(agent_id), done=request.query_params.get("done"))


@router.get("/agents/{agent_id}/rollback")
async def confirm_rollback(request: Request, agent_id: str, to: int) -> Response:
    key = await signed_in(request)
    if key is None:
        return to_login()
    agent = own_agent(agent_id, key)
    if not key.is_admin:
        return page(request, "refused.html", 403, key=key, agent_url=agent_url(agent_id))
    async with api_of(request).service.rt.repo(agent.tenant_id) as repo:
        active = await repo.active_version()
        target = await repo.version(to)
    if target is None:
        raise HTTPException(404, f"no version v{to}")
    return page(request, "confirm.html", key=key, active=active, target=target,
                token=api_of(request).sessions.form_token(key), agent_url=agent_url(agent_id))


@router.post("/agents/{agent_id}/rollback")
async def do_rollback(request: Request, agent_id: str) -> Response:
    key = await signed_in(request)
    if key is None:
        return to_login()
    api = api_of(request)
    agent = own_agent(agent_id, key)
    form = await request.form()
    if not key.is_admin or not api.sessions.form_token_ok(key, str(form.get("token", ""))):
        return page(request, "refused.html", 403, key=key, agent_url=agent_url(agent_id))
    target = str(form.get("target_version", ""))
    if not target.isdigit():
        raise HTTPException(422, "target_version must be a version number")
    await rollback_to(api, agent.tenant_id, key, int(target))
    return RedirectResponse(f"{agent_url(agent_id)}?done=v{target}", status_code=303)


def _register_filters() -> None:
    templates.env.filters["pct"] = lambda v: "–" if v is None else f"{v:.0%}"
    templates.env.filters["num"] = lambda v, d=1: "–" if v is None else f"{v:.{d}f}"
    templates.env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M") if v else ""


_register_filters()
