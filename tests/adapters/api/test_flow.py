"""The seed's whole flow over HTTP against the real processes (`evobot serve` + `evobot
worker`, embedded and services stacks): create an agent → execute → rate it with a comment
→ the evolution shows in history and state → diff → roll back. Then what an operator sees:
/metrics moved (web and worker, multiprocess mode) and JSON log lines with the ids."""

from __future__ import annotations

import re
from typing import Any

from tests.adapters.api.conftest import ApiProcesses, bearer


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text (0 when absent)."""
    for line in metrics.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_create_execute_rate_evolve_roll_back(api: ApiProcesses) -> None:
    agent, key = await api.create_agent("acme", domain="retail")
    agent_id = agent["instance_id"]
    assert agent_id == "api:acme" and agent["version"] == 1 and agent["domain"] == "retail"
    assert "help acme's customers" in agent["system_prompt"]
    assert key.startswith("evk_")

    # execute: the worker process answers; the web process waits for it on the event feed
    result = await api.execute(agent_id, key, "What is the capital of Peru?")
    assert result["status"] == "succeeded", result
    assert result["output"].startswith("Answer to: What is the capital of Peru?")
    assert result["version"] == 1

    await _rate_and_see_it_evolve(api, agent_id, key, result["execution_id"])

    # the new version answers differently
    again = await api.execute(agent_id, key, "What is the capital of Chile?")
    assert again["version"] == 2 and "following: Answer in Spanish please." in again["output"]

    await _roll_back(api, agent_id, key)
    await _operator_sees_it(api, agent_id)


async def _rate_and_see_it_evolve(api: ApiProcesses, agent_id: str, key: str,
                                  execution_id: int) -> None:
    """A low rating with a comment → an evolution in the worker → history, state, diff."""
    ack = await api.web.post(f"/v1/agents/{agent_id}/feedback", headers=bearer(key), json={
        "execution_id": execution_id, "rating": 1, "successful": False,
        "comment": "answer in Spanish please", "category": "language"})
    assert ack.status_code == 200, ack.text
    assert ack.json()["recorded"] and ack.json()["evolution_queued"]

    async def evolved() -> dict[str, Any] | None:
        state = await api.state(agent_id, key)
        return state if state["version"] == 2 else None

    state = await api.until(evolved, "the evolution to v2")
    assert "Answer in Spanish please." in state["system_prompt"]
    assert state["total_executions"] == 1 and state["avg_user_rating"] == 1.0
    assert state["feedback_history"][0]["comment"] == "answer in Spanish please"
    assert state["modification_history"][0]["decision"] == "promoted"
    assert [v["version"] for v in state["metrics"]["versions"]] == [1]
    assert state["metrics"]["versions"][0]["success_rate"] == 0.0

    history = (await api.web.get(f"/v1/agents/{agent_id}/history?limit=10",
                                 headers=bearer(key))).json()
    [evolution] = [e for e in history["evolutions"] if e["decision"] == "promoted"]
    assert evolution["new_version"] == 2 and evolution["replay_summary"].startswith("replayed")
    assert [v["version"] for v in history["versions"]] == [2, 1]
    assert history["versions"][0]["active"] and history["executions"][0]["ratings"] == [1]

    version = (await api.web.get(f"/v1/agents/{agent_id}/versions/2", headers=bearer(key))).json()
    assert version["parent_version"] == 1 and version["created_by"].startswith("evolution:")
    diff = (await api.web.get(f"/v1/agents/{agent_id}/diff?from=1&to=2",
                              headers=bearer(key))).json()
    assert "+1. Answer in Spanish please." in diff["diff"]


async def _roll_back(api: ApiProcesses, agent_id: str, key: str) -> None:
    """The key that came with the agent is an admin key: it may roll back."""
    rolled = await api.web.post(f"/v1/agents/{agent_id}/rollback", headers=bearer(key),
                                json={"target_version": 1})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["version"] == 1
    assert (await api.state(agent_id, key))["version"] == 1
    history = (await api.web.get(f"/v1/agents/{agent_id}/history", headers=bearer(key))).json()
    assert history["label_moves"][0]["reason"] == "rollback"
    assert history["label_moves"][0]["actor"].startswith("apikey:evk_")


async def _operator_sees_it(api: ApiProcesses, agent_id: str) -> None:
    """/metrics of the web process shows the worker's counters too (multiprocess mode), and
    the worker's log lines are JSON carrying the ids."""

    async def moved() -> str | None:
        """The counters are written when each job ends, a moment after its answer."""
        text = (await api.web.get("/metrics")).text
        done = (sample(text, "evobot_llm_calls_total", purpose="judge")
                and sample(text, "evobot_job_seconds_count", job="execute_job", outcome="ok") == 2)
        return text if done else None

    metrics = await api.until(moved, "the worker's model calls in /metrics")
    assert sample(metrics, "evobot_executions_total", status="queued") == 2
    assert sample(metrics, "evobot_executions_total", status="succeeded") == 2
    assert sample(metrics, "evobot_ratings_total", rating="1") == 1
    assert sum(sample(metrics, "evobot_evolutions_total", trigger=t, decision="promoted")
               for t in ("feedback", "new_objective_type")) == 1
    assert sample(metrics, "evobot_rollbacks_total", kind="manual") == 1
    assert sample(metrics, "evobot_llm_calls_total", purpose="execute", outcome="ok") >= 2
    assert sample(metrics, "evobot_llm_tokens_total", purpose="execute", direction="in") > 0
    assert sample(metrics, "evobot_job_seconds_count", job="execute_job", outcome="ok") == 2
    assert sample(metrics, "evobot_http_requests_total",
                  route="/v1/agents/{agent_id}/execute", method="POST", status="200") >= 1
    assert "evobot_queue_executions_jobs" in metrics
    assert sample(metrics, "evobot_sandbox_runs_total", outcome="ok") >= 0

    worker = api.log_records("worker")
    assert worker, api.output()
    assert any(r.get("execution_id") and r.get("job") == "execute_job" for r in worker)
    assert any(r.get("tenant_id") == agent_id and r.get("job") == "evolve_job" for r in worker)
    assert any(r.get("evolution_id") for r in worker)
