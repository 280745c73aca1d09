"""The REST API moves an agent too: GET …/export gives the file (admin keys), POST …/import
makes it a new version of another agent; a refused file answers 422 and changes nothing."""

from __future__ import annotations

import json

import pytest

from tests.adapters.api.conftest import ApiProcesses, bearer

pytestmark = pytest.mark.parametrize("stack", ["services"], indirect=True)


async def test_an_agent_moves_between_api_agents(api: ApiProcesses) -> None:
    alpha, key_a = await api.create_agent("alpha")
    beta, key_b = await api.create_agent("beta")
    a_id, b_id = alpha["instance_id"], beta["instance_id"]
    member_key = (await api.cli("apikey", "create", a_id)).splitlines()[-1]

    refused = await api.web.get(f"/v1/agents/{a_id}/export", headers=bearer(member_key))
    assert refused.status_code == 403
    assert (await api.web.get(f"/v1/agents/{b_id}/export", headers=bearer(key_a))
            ).status_code == 404
    feedback = await api.web.get(f"/v1/agents/{a_id}/export?with_feedback=true",
                                 headers=bearer(key_a))
    assert feedback.status_code == 403 and "isolated" in feedback.json()["detail"]

    exported = await api.web.get(f"/v1/agents/{a_id}/export", headers=bearer(key_a))
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == "application/json"
    assert 'filename="evobot-agent-api-alpha-v1.json"' in exported.headers[
        "content-disposition"]
    agent = exported.json()
    assert agent["format_version"] == 1 and agent["source"] == a_id

    cut = await api.web.post(f"/v1/agents/{b_id}/import", content=exported.content[:200],
                             headers=bearer(key_b))
    assert cut.status_code == 422 and "not complete JSON" in cut.json()["detail"]
    assert (await api.state(b_id, key_b))["version"] == 1

    done = await api.web.post(f"/v1/agents/{b_id}/import", content=exported.content,
                              headers=bearer(key_b))
    assert done.status_code == 200, done.text
    assert (done.json()["from_version"], done.json()["to_version"]) == (1, 2)
    versions = await api.web.get(f"/v1/agents/{b_id}/versions/2", headers=bearer(key_b))
    persona = agent["versions"][0]["prompt"]["persona"]
    assert json.dumps(persona) in versions.text
    history = (await api.web.get(f"/v1/agents/{b_id}/history", headers=bearer(key_b))).json()
    assert history["label_moves"][0]["reason"] == "import"
