"""Files over the REST API: a multipart `execute` shares files with the objective, and the
files the answer brings are download links only the agent's own keys can follow — the real
web app in-process with its embedded worker."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.web import Web, build_web
from engine.storage.api_keys import KeyRole, create_key
from tests.adapters.api.conftest import bearer
from tests.conftest import Stack, make_config
from tests.engine.files.helpers import ANALYST, rates_close, sales_csv

AGENT, OTHER = "api:retail", "api:other"
OBJECTIVE = "Calculate accessory attach rates by device"


@dataclass
class App:
    web: Web
    client: httpx.AsyncClient
    keys: dict[str, str]


@pytest.fixture
async def app(embedded: Stack, tmp_path: Path) -> AsyncIterator[App]:
    config = make_config(tmp_path, LLM_MODEL=ANALYST, EVOBOT_TOOL_TIMEOUT_S=60,
                         EVOBOT_SESSION_SECRET="s", EVOBOT_API_WAIT_S=60)
    web = await build_web(config, embedded_worker=True)
    keys = {}
    for agent in (AGENT, OTHER):
        async with web.ctx.runtime.repo(agent) as repo:
            await web.ctx.service.ensure_tenant(repo)
            keys[agent] = (await create_key(repo.session, agent, KeyRole.MEMBER)).secret
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=web.app),
                               base_url="http://evobot.test", timeout=90)
    async with web.app.router.lifespan_context(web.app):
        try:
            yield App(web, client, keys)
        finally:
            await client.aclose()
    await web.aclose()


async def test_multipart_execute_answers_with_download_links(app: App) -> None:
    data = sales_csv(rows=8000)
    assert len(data) > 64 * 1024  # more than a JSON body may carry
    response = await app.client.post(
        f"/v1/agents/{AGENT}/execute", headers=bearer(app.keys[AGENT]),
        data={"objective": OBJECTIVE, "context": '{"quarter": "Q3"}'},
        files=[("files", ("sales.csv", data, "text/csv"))])
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "succeeded"
    links = {f["name"]: f for f in result["files"]}
    assert sorted(links) == ["attach_rates.csv", "attach_rates.png"]

    png = await app.client.get(links["attach_rates.png"]["url"], headers=bearer(app.keys[AGENT]))
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert png.headers["content-type"] == "image/png"
    assert png.headers["content-disposition"] == 'attachment; filename="attach_rates.png"'
    table = await app.client.get(links["attach_rates.csv"]["url"],
                                 headers=bearer(app.keys[AGENT]))
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert rates_close({r["device"]: float(r["attach_rate"]) for r in rows}, data)
    # the same links are on the execution, and are nobody else's business
    again = await app.client.get(result["url"], headers=bearer(app.keys[AGENT]))
    assert again.json()["files"] == result["files"]
    stranger = await app.client.get(links["attach_rates.png"]["url"],
                                    headers=bearer(app.keys[OTHER]))
    assert stranger.status_code == 404


async def test_files_that_cannot_be_used_are_422_with_the_reason(app: App) -> None:
    response = await app.client.post(
        f"/v1/agents/{AGENT}/execute", headers=bearer(app.keys[AGENT]),
        data={"objective": OBJECTIVE},
        files=[("files", ("../../payload.csv", b"MZ\x90\x00\x03", "text/csv")),
               ("files", ("tool.exe", b"MZ", "application/octet-stream"))])
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "payload.csv: this is a binary file, not CSV text" in detail
    assert "tool.exe: this type of file is not supported" in detail
    assert "Nothing was run" in detail


async def test_a_multipart_form_is_validated_like_json(app: App) -> None:
    response = await app.client.post(
        f"/v1/agents/{AGENT}/execute", headers=bearer(app.keys[AGENT]),
        data={"objective": OBJECTIVE, "colour": "blue"},
        files=[("files", ("sales.csv", sales_csv(rows=5), "text/csv"))])
    assert response.status_code == 422
    assert "colour" in response.text


async def test_only_multipart_execute_may_be_large(app: App) -> None:
    huge = await app.client.post(f"/v1/agents/{AGENT}/execute", headers=bearer(app.keys[AGENT]),
                                 json={"objective": "x" * 70_000})
    assert huge.status_code == 413
