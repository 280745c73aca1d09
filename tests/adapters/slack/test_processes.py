"""The whole Slack loop with the real processes: `evobot serve` and `evobot worker` as
subprocesses over Redis (and SQLite or PostgreSQL), talking HTTP to the Slack double.

mention → answer in thread → 👎 + comment → the diff announced in that channel →
`/evobot rollback` by an admin → confirmation; by a non-admin → refused; a second workspace
installed through OAuth stays untouched."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from doubles.slack import Deliveries, Delivery, SlackDouble
from tests.adapters.slack.conftest import CLIENT_ID, CLIENT_SECRET, SECRET
from tests.adapters.slack.test_workspaces import install
from tests.conftest import Stack

ROOT = Path(__file__).resolve().parents[3]
CHANNEL_A, CHANNEL_B = "C0ACMEGEN", "C0GLOBEX"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stack_env(stack: Stack) -> dict[str, str]:
    config = stack.config
    redis_url = (config.redis_url if config.redis_url
                 else f"unix://{stack.redis.socket_path}")
    env = {
        "DATA_DIR": str(config.data_dir), "REDIS_URL": redis_url,
        "LLM_MODEL": "scripted/default", "EVOBOT_ALLOW_MODEL_REQUESTS": "false",
        "EVOBOT_JOB_RETRY_INTERVALS": "0,0", "EVOBOT_EVOLVE_AFTER_RATINGS": "3",
        "LLM_TIMEOUT_S": "10", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    if config.database_url:
        env["DATABASE_URL"] = config.database_url
    return env


@dataclass
class Processes:
    web: httpx.AsyncClient
    double: SlackDouble
    procs: list[subprocess.Popen[bytes]]
    logs: Path

    async def post(self, delivery: Delivery) -> httpx.Response:
        return await self.web.post("/slack/events", content=delivery.body,
                                   headers=delivery.headers(SECRET))

    def output(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}"
                         for p in sorted(self.logs.glob("*.log")))


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen([sys.executable, "-m", "bot.cli", *args], cwd=ROOT, env=env,
                            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
async def processes(stack: Stack, double: SlackDouble, tmp_path: Path
                    ) -> AsyncIterator[Processes]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "EVOBOT_"))},
        **stack_env(stack),
        "SLACK_SIGNING_SECRET": SECRET, "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET, "SLACK_API_URL": double.api_url,
        "EVOBOT_SLACK_PACE_S": "0.2", "PORT": str(port), "EVOBOT_HOST": "127.0.0.1",
        "EVOBOT_ADMINS": "", "PYTHONUNBUFFERED": "1",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = [spawn(["serve"], env, logs / "serve.log")]
    web = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    p = Processes(web=web, double=double, procs=procs, logs=logs)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert procs[0].poll() is None, p.output()
            try:
                if (await web.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "evobot serve did not become healthy\n" + p.output()
            await asyncio.sleep(0.2)
        procs.append(spawn(["worker"], env, logs / "worker.log"))
        yield p
    finally:
        await web.aclose()
        for proc in procs:
            await asyncio.to_thread(stop, proc)


async def wait(p: Processes, predicate: Any, what: str, within_s: float = 90) -> Any:
    try:
        return await p.double.wait_for(predicate, within_s=within_s, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{p.output()}") from None


async def test_full_flow_with_real_processes(processes: Processes) -> None:
    p, double, deliveries = processes, processes.double, Deliveries()
    acme, globex = double.add_workspace("T0ACME"), double.add_workspace("T0GLOBEX")
    double.add_user("T0ACME", "U0ANN", admin=True)
    double.add_user("T0ACME", "U0BOB")
    double.add_user("T0GLOBEX", "U0GUS", owner=True)
    await install(p.web, double, "T0ACME")
    await install(p.web, double, "T0GLOBEX")

    # mention → answer in the thread (posted by the worker process, with Acme's token)
    mention, ts = deliveries.app_mention(acme, "U0ANN", CHANNEL_A, "What is the capital of Peru?")
    assert (await p.post(mention)).status_code == 200
    answer = await wait(p, lambda: next((c for c in double.posts(CHANNEL_A)
                                         if c.params.get("thread_ts") == ts), None), "answer")
    assert answer.token == acme.token
    assert "Answer to: What is the capital of Peru?" in answer.params["text"]
    assert [b["type"] for b in answer.params["blocks"]][-2:] == ["actions", "context"]

    # 👎 + a comment in the thread → evolution → the diff announced in that channel
    down = deliveries.reaction(acme, "U0ANN", "-1::skin-tone-2", CHANNEL_A, answer.response["ts"])
    assert (await p.post(down)).status_code == 200
    await wait(p, lambda: double.ephemerals("U0ANN"), "the vote's ephemeral ack")
    reply, _ = deliveries.message(acme, "U0ANN", CHANNEL_A, "answer in Spanish please",
                                  thread_ts=ts)
    assert (await p.post(reply)).status_code == 200
    announced = await wait(p, lambda: next((c for c in double.posts(CHANNEL_A)
                                            if c.params["text"].startswith("Agent evolved")),
                                           None), "the evolution announcement")
    blocks = announced.params["blocks"]
    assert blocks[0]["text"]["text"] == "Agent evolved: v1 → v2"
    assert "thread_ts" not in announced.params
    diff = next(b["text"]["text"] for b in blocks if "```" in b.get("text", {}).get("text", ""))
    assert "+1. Answer in Spanish please." in diff
    assert blocks[-1]["elements"][0]["action_id"] == "evobot:cmd:rollback"

    # /evobot rollback: refused for a non-admin, done for an admin (ephemeral, in the ack)
    url = double.response_url()
    refused = await p.post(deliveries.slash_command(acme, "U0BOB", CHANNEL_A, "rollback",
                                                    response_url=url))
    body = refused.json()
    assert body["response_type"] == "ephemeral"
    assert "Only workspace or chat admins" in body["blocks"][1]["text"]["text"]
    done = await p.post(deliveries.slash_command(acme, "U0ANN", CHANNEL_A, "rollback",
                                                 response_url=url))
    reply_payload = done.json() if done.content else {}
    if reply_payload.get("text", "").startswith("Working on"):  # over the 2.5 s budget
        reply_payload = (await wait(p, lambda: double.responses, "response_url"))[-1]
    assert reply_payload["response_type"] == "ephemeral"
    assert reply_payload["blocks"][0]["text"]["text"] == "Rolled back: v2 → v1", reply_payload
    rolled = await wait(p, lambda: next((c for c in double.posts(CHANNEL_A)
                                         if c.params["text"].startswith("Rolled back by")),
                                        None), "the rollback announcement")
    assert rolled.params["text"] == "Rolled back by U0ANN: v2 → v1"

    # the second workspace saw none of it
    status = await p.post(deliveries.slash_command(globex, "U0GUS", CHANNEL_B, "status",
                                                   response_url=url))
    assert status.json()["blocks"][1]["fields"][0]["text"].endswith("v1")
    assert [c for c in double.calls if c.token == globex.token
            and c.method == "chat.postMessage"] == []
    mention_b, ts_b = deliveries.app_mention(globex, "U0GUS", CHANNEL_B, "Hello from Globex")
    assert (await p.post(mention_b)).status_code == 200
    answer_b = await wait(p, lambda: next((c for c in double.posts(CHANNEL_B)
                                           if c.params.get("thread_ts") == ts_b), None),
                          "Globex's answer")
    assert answer_b.token == globex.token
    assert "following" not in answer_b.params["text"]  # Acme's rule never reached Globex
    metrics = (await p.web.get("/metrics")).text
    assert 'evobot_http_requests_total{method="POST",route="/slack/events",status="200"}' in metrics


async def test_socket_mode_process(embedded: Stack, double: SlackDouble, tmp_path: Path) -> None:
    """`evobot slack`: the same app over a Socket Mode websocket, with the embedded stack and
    worker in the one process."""
    ws = double.add_workspace("T0ACME")
    double.add_user("T0ACME", "U0ANN", admin=True)
    app_token = double.add_app_token()
    env = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "EVOBOT_", "REDIS_", "DATABASE_"))},
        "DATA_DIR": str(tmp_path / "socket-data"), "LLM_MODEL": "scripted/default",
        "EVOBOT_ALLOW_MODEL_REQUESTS": "false", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "SLACK_BOT_TOKEN": ws.token, "SLACK_APP_TOKEN": app_token,
        "SLACK_API_URL": double.api_url, "EVOBOT_SLACK_PACE_S": "0", "PYTHONUNBUFFERED": "1",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    proc = spawn(["slack"], env, logs / "slack.log")
    p = Processes(web=httpx.AsyncClient(), double=double, procs=[proc], logs=logs)
    deliveries = Deliveries()
    try:
        await wait(p, lambda: double.sockets, "the Socket Mode connection", within_s=90)
        mention, ts = deliveries.app_mention(ws, "U0ANN", "C0SOCK", "over the socket")
        envelope = Deliveries.envelope(mention)
        await double.socket_send(envelope)
        await double.socket_send(envelope | {"retry_attempt": 1, "retry_reason": "timeout"})
        await wait(p, lambda: [a for a in double.socket_acks
                               if a.get("envelope_id") == envelope["envelope_id"]], "the ack")
        answer = await wait(p, lambda: next((c for c in double.posts("C0SOCK")
                                             if c.params.get("thread_ts") == ts), None),
                            "the answer")
        assert "over the socket" in answer.params["text"]
        command = Deliveries.envelope(deliveries.slash_command(
            ws, "U0ANN", "C0SOCK", "status", response_url=double.response_url()),
            "slash_commands")
        await double.socket_send(command)
        ack = await wait(p, lambda: next((a for a in double.socket_acks
                                          if a.get("envelope_id") == command["envelope_id"]),
                                         None), "the command's ack")
        assert ack["payload"]["response_type"] == "ephemeral"
        assert ack["payload"]["blocks"][0]["text"]["text"] == "evobot status"
        await asyncio.sleep(0.5)
        assert len([c for c in double.posts("C0SOCK")]) == 1  # the retried envelope ran once
    finally:
        await p.web.aclose()
        await asyncio.to_thread(stop, proc)
    assert proc.returncode == 0, p.output()
