"""Events as they happen, from the real processes: an execute call streamed as Server-Sent
Events, a tenant followed over the WebSocket (answers, feedback, the evolution, the
rollback), and an objective that outlasts the server's wait (202, then GET)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.adapters.api.conftest import WAIT_S, ApiProcesses, bearer

# PostgreSQL + Redis over TCP (the flow test covers the embedded stack's feed too)
pytestmark = pytest.mark.parametrize("stack", ["services"], indirect=True)


async def sse_events(web: httpx.AsyncClient, url: str, key: str, body: dict[str, Any]
                     ) -> list[dict[str, Any]]:
    events = []
    async with web.stream("POST", url, json=body, headers=bearer(key), timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    return events


async def next_of(ws: ClientConnection, *types: str, within_s: float = 90) -> dict[str, Any]:
    """The next event of one of these types (others are skipped)."""
    async with asyncio.timeout(within_s):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] in types:
                return dict(event)


async def test_execute_streams_server_sent_events(api: ApiProcesses) -> None:
    agent, key = await api.create_agent("streamco")
    agent_id = agent["instance_id"]
    await api.execute(agent_id, key, "warm up")  # the first job opens the knowledge store
    events = await sse_events(api.web, f"/v1/agents/{agent_id}/execute", key,
                              {"objective": "Name three rivers", "stream": True})
    assert [e["type"] for e in events] == ["queued", "started", "answer"], events
    assert len({e["execution_id"] for e in events}) == 1
    answer = events[-1]
    assert answer["data"]["text"] == "Answer to: Name three rivers"
    assert answer["data"]["version"] == 1 and answer["timestamp"]


async def test_a_slowly_written_answer_streams_its_text_before_the_answer(
    api: ApiProcesses,
) -> None:
    agent, key = await api.create_agent("tokenco")
    agent_id = agent["instance_id"]
    await api.execute(agent_id, key, "warm up")  # the first job opens the knowledge store
    objective = "Name three long rivers of Europe please <<stream:0.3>>"  # a word each 0.3 s
    url = api.base_url.replace("http", "ws") + f"/v1/agents/{agent_id}/stream"
    async with connect(url, additional_headers=bearer(key)) as ws:
        await next_of(ws, "subscribed")
        events = await sse_events(api.web, f"/v1/agents/{agent_id}/execute", key,
                                  {"objective": objective, "stream": True})
        followed = [await next_of(ws, "answer_delta", "answer")]
        while followed[-1]["type"] != "answer":
            followed.append(await next_of(ws, "answer_delta", "answer"))

    types = [e["type"] for e in events]
    assert types[:2] == ["queued", "started"] and types[-1] == "answer", types
    answer = events[-1]["data"]["text"]
    assert answer == f"Answer to: {objective}"
    for stream in (events[2:-1], followed[:-1]):
        partial = [e["data"]["text"] for e in stream]
        assert partial and {e["type"] for e in stream} == {"answer_delta"}
        assert all(answer.startswith(text) for text in partial) and partial[0] != answer
    assert followed[-1]["data"]["text"] == answer


async def test_websocket_follows_the_agent(api: ApiProcesses) -> None:
    agent, key = await api.create_agent("wsco")
    agent_id = agent["instance_id"]
    url = api.base_url.replace("http", "ws") + f"/v1/agents/{agent_id}/stream"
    async with connect(url, additional_headers=bearer(key)) as ws:
        assert (await next_of(ws, "subscribed"))["data"] == {"agent_id": agent_id}
        result = await api.execute(agent_id, key, "What is the tallest mountain?")
        seen = [await next_of(ws, "queued"), await next_of(ws, "started"),
                await next_of(ws, "answer")]
        assert {e["execution_id"] for e in seen} == {result["execution_id"]}
        await api.web.post(f"/v1/agents/{agent_id}/feedback", headers=bearer(key), json={
            "execution_id": result["execution_id"], "rating": 1,
            "comment": "answer in French please"})
        assert (await next_of(ws, "feedback"))["data"]["rating"] == 1
        evolution = await next_of(ws, "evolution")
        assert evolution["data"]["decision"] == "promoted"
        assert "+1. Answer in French please." in evolution["data"]["diff"]
        await api.web.post(f"/v1/agents/{agent_id}/rollback", headers=bearer(key),
                           json={"target_version": 1})
        rollback = await next_of(ws, "rollback")
        assert rollback["data"]["from_version"] == 2 and rollback["data"]["to_version"] == 1
        assert rollback["data"]["automatic"] is False


async def test_websocket_refuses_without_the_right_key(api: ApiProcesses) -> None:
    agent, key = await api.create_agent("closedco")
    other, _ = await api.create_agent("otherco")
    base = api.base_url.replace("http", "ws")
    for path, headers, code in (
        (f"/v1/agents/{agent['instance_id']}/stream", {}, 4401),
        (f"/v1/agents/{agent['instance_id']}/stream", bearer("evk_wrong"), 4401),
        (f"/v1/agents/{other['instance_id']}/stream", bearer(key), 4404),
    ):
        async with connect(base + path, additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def test_a_slow_answer_is_202_then_get(api: ApiProcesses) -> None:
    agent, key = await api.create_agent("slowco")
    agent_id = agent["instance_id"]
    await api.execute(agent_id, key, "warm up")  # the first job opens the knowledge store
    response = await api.web.post(f"/v1/agents/{agent_id}/execute", headers=bearer(key),
                                  json={"objective": f"think <<sleep:{WAIT_S + 2}>>"},
                                  timeout=WAIT_S + 10)
    assert response.status_code == 202, response.text
    pending = response.json()
    assert pending["status"] in ("pending", "running") and pending["output"] is None
    assert response.headers["location"] == pending["url"]
    done = await api.until(lambda: api.finished(pending["url"], key), "the slow answer")
    assert done["status"] == "succeeded" and done["output"].startswith("Answer to: think")
