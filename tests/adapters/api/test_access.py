"""Who may do what: a key sees only its own agent (another agent's ids answer 404 and change
nothing), a missing / wrong / revoked key is 401, bad input is 422 naming the fields, big
bodies 413, plain keys can't roll back or create agents, and the rate limit answers 429 with
Retry-After (tests/adapters/api/test_app.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.adapters.api.conftest import ApiProcesses, bearer

pytestmark = pytest.mark.parametrize("stack", ["services"], indirect=True)


async def test_a_key_sees_only_its_own_agent(api: ApiProcesses) -> None:
    a, key_a = await api.create_agent("alpha")
    b, key_b = await api.create_agent("beta")
    a_id, b_id = a["instance_id"], b["instance_id"]
    result_b = await api.execute(b_id, key_b, "beta's secret plan")
    before = await api.state(b_id, key_b)

    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/v1/agents/{b_id}/state", None),
        ("GET", f"/v1/agents/{b_id}/history", None),
        ("GET", f"/v1/agents/{b_id}/versions/1", None),
        ("GET", f"/v1/agents/{b_id}/diff", None),
        ("GET", f"/v1/executions/{result_b['execution_id']}", None),
        ("POST", f"/v1/agents/{b_id}/execute", {"objective": "leak it"}),
        ("POST", f"/v1/agents/{b_id}/feedback",
         {"execution_id": result_b["execution_id"], "rating": 1, "comment": "sabotage"}),
        ("POST", f"/v1/agents/{b_id}/rollback", {"target_version": 1}),
        ("GET", "/v1/agents/api:nobody/state", None),
        # A's agent, but B's execution: as if it didn't exist
        ("POST", f"/v1/agents/{a_id}/feedback",
         {"execution_id": result_b["execution_id"], "rating": 1, "comment": "sabotage"}),
    ]
    for method, url, body in attempts:
        response = await api.web.request(method, url, json=body, headers=bearer(key_a))
        assert response.status_code == 404, (method, url, response.text)
        assert "beta" not in response.text
    after = await api.state(b_id, key_b)
    assert after["total_executions"] == before["total_executions"] == 1
    assert after["feedback_history"] == [] and after["version"] == 1


async def test_keys_roles_and_bad_input(api: ApiProcesses) -> None:
    agent, admin_key = await api.create_agent("gamma")
    agent_id = agent["instance_id"]
    member_key = (await api.cli("apikey", "create", agent_id)).splitlines()[-1]
    state_url = f"/v1/agents/{agent_id}/state"

    # 401: no key, a malformed header, an unknown key, a revoked key
    for headers in ({}, {"Authorization": "Basic abc"}, bearer("evk_not-a-key")):
        response = await api.web.get(state_url, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert (await api.web.get(state_url, headers=bearer(member_key))).status_code == 200

    # 403: a plain key can't roll back; an agent's key can't create agents
    refused = await api.web.post(f"/v1/agents/{agent_id}/rollback", headers=bearer(member_key),
                                 json={"target_version": 1})
    assert refused.status_code == 403
    await api.cli("apikey", "revoke", member_key[:12])
    assert (await api.web.get(state_url, headers=bearer(member_key))).status_code == 401
    create = await api.web.post("/v1/agents", headers=bearer(admin_key), json={
        "client_id": "delta", "initial_objective": "x"})
    assert create.status_code == 403
    again = await api.web.post("/v1/agents", headers=bearer(api.operator_key), json={
        "client_id": "gamma", "initial_objective": "x"})
    assert again.status_code == 409
    shared, shared_key = await api.create_agent("epsilon", bootstrap_mode="collective")
    assert (await api.state(shared["instance_id"], shared_key))["privacy_mode"] == "collective"

    await _bad_input(api, agent_id, admin_key)


def _fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {str(error["loc"][-1]) for error in response.json()["detail"]}


async def _bad_input(api: ApiProcesses, agent_id: str, key: str) -> None:
    web, auth = api.web, bearer(key)
    assert _fields(await web.post(f"/v1/agents/{agent_id}/execute", headers=auth,
                                  json={"objective": ""})) == {"objective"}
    assert _fields(await web.post(f"/v1/agents/{agent_id}/execute", headers=auth,
                                  json={"objectiv": "typo"})) == {"objective", "objectiv"}
    assert _fields(await web.post(f"/v1/agents/{agent_id}/feedback", headers=auth, json={
        "execution_id": 1, "rating": 6})) == {"rating"}
    contradiction = await web.post(f"/v1/agents/{agent_id}/feedback", headers=auth, json={
        "execution_id": 1, "rating": 5, "successful": False})
    assert contradiction.status_code == 422 and "contradicts" in contradiction.text
    assert _fields(await web.post("/v1/agents", headers=bearer(api.operator_key), json={
        "client_id": "no spaces!", "initial_objective": "x", "bootstrap_mode": "max"})) == {
        "client_id", "bootstrap_mode"}
    assert _fields(await web.get(f"/v1/agents/{agent_id}/history?limit=0",
                                 headers=auth)) == {"limit"}
    broken = await web.post(f"/v1/agents/{agent_id}/execute", headers=auth, content=b"{nope",
                            )
    assert broken.status_code == 422
    huge = await web.post(f"/v1/agents/{agent_id}/execute", headers=auth,
                          json={"objective": "x" * 70_000})
    assert huge.status_code == 413
    missing = await web.get(f"/v1/agents/{agent_id}/versions/9", headers=auth)
    assert missing.status_code == 404

