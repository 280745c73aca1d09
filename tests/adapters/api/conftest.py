"""Fixtures for the REST API and the dashboard: the real `evobot serve` and `evobot worker`
processes over the embedded or services stack (as tests/adapters/slack/test_processes.py
runs them), keys made with the real CLI, and helpers that speak HTTP like a client would."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.storage.api_keys import KeyRole, create_key
from engine.storage.db import create_engine, session_factory
from tests.adapters.slack.test_processes import ROOT, free_port, spawn, stack_env, stop
from tests.conftest import Stack

SESSION_SECRET = "test-session-secret"
WAIT_S = 6  # the server's EVOBOT_API_WAIT_S: execute answers 202 after this


def artifacts_dir(tmp_path: Path) -> Path:
    """Where screenshots go: EVOBOT_TEST_ARTIFACTS (CI keeps it), else the test's tmp dir."""
    base = os.environ.get("EVOBOT_TEST_ARTIFACTS")
    path = Path(base) if base else tmp_path / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class ApiProcesses:
    """`evobot serve` + `evobot worker` on one stack, and a client of the web process."""

    base_url: str
    env: dict[str, str]
    web: httpx.AsyncClient
    logs: Path
    multiproc_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    operator_key: str = ""

    def output(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-6000:]}"
                         for p in sorted(self.logs.glob("*.log")))

    async def cli(self, *args: str) -> str:
        """Run `evobot <args>` with the processes' environment; its stdout."""
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "bot.cli", *args], cwd=ROOT, env=self.env,
            capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        return done.stdout.decode().strip()

    async def create_agent(self, client_id: str, **extra: Any) -> tuple[dict[str, Any], str]:
        body = {"client_id": client_id, "initial_objective": f"help {client_id}'s customers",
                "bootstrap_mode": "minimal", **extra}
        response = await self.web.post("/v1/agents", json=body, headers=bearer(self.operator_key))
        assert response.status_code == 201, response.text
        agent = response.json()
        return agent, agent["api_key"]

    async def execute(self, agent_id: str, key: str, objective: str, **extra: Any
                      ) -> dict[str, Any]:
        """POST execute; a 202 (the first job loads the knowledge store) is followed up."""
        response = await self.web.post(f"/v1/agents/{agent_id}/execute",
                                       json={"objective": objective, **extra},
                                       headers=bearer(key), timeout=WAIT_S + 10)
        assert response.status_code in (200, 202), response.text
        result = response.json()
        return await self.until(lambda: self.finished(result["url"], key),
                                f"execution {result['execution_id']}")

    async def finished(self, url: str, key: str) -> dict[str, Any] | None:
        result = (await self.web.get(url, headers=bearer(key))).json()
        return result if result["status"] in ("succeeded", "failed") else None

    async def until(self, probe: Callable[[], Any], what: str, within_s: float = 120) -> Any:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            value = await probe()
            if value:
                return value
            for proc in self.procs:
                assert proc.poll() is None, f"a process died\n{self.output()}"
            await asyncio.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}\n{self.output()}")

    async def state(self, agent_id: str, key: str) -> dict[str, Any]:
        response = await self.web.get(f"/v1/agents/{agent_id}/state", headers=bearer(key))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def log_records(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines of one process (LOG_FORMAT=json)."""
        records = []
        for line in (self.logs / f"{name}.log").read_text().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records


async def _healthy(p: ApiProcesses) -> None:
    deadline = time.monotonic() + 90
    while True:
        assert p.procs[0].poll() is None, p.output()
        try:
            if (await p.web.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "evobot serve did not become healthy\n" + p.output()
        await asyncio.sleep(0.2)


async def operator_key(stack: Stack) -> str:
    """An operator key straight into the database `evobot serve` migrated (the CLI that does
    the same is tested in test_access.py)."""
    engine = create_engine(stack.config.resolved_database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            return (await create_key(session, None, KeyRole.OPERATOR)).secret
    finally:
        await engine.dispose()


@pytest.fixture
async def api(stack: Stack, tmp_path: Path) -> AsyncIterator[ApiProcesses]:
    port = free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = {
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "EVOBOT_", "TELEGRAM_", "PROMETHEUS_"))},
        **stack_env(stack),
        "PORT": str(port), "EVOBOT_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1",
        "EVOBOT_API_WAIT_S": str(WAIT_S), "EVOBOT_SESSION_SECRET": SESSION_SECRET,
        "EVOBOT_API_RATE_LIMIT": "1000", "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    web = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20)
    p = ApiProcesses(base_url=f"http://127.0.0.1:{port}", env=env, web=web, logs=logs,
                     multiproc_dir=multiproc)
    try:
        p.procs.append(spawn(["serve"], env, logs / "serve.log"))
        await _healthy(p)
        p.procs.append(spawn(["worker"], env, logs / "worker.log"))
        p.operator_key = await operator_key(stack)
        yield p
    finally:
        await web.aclose()
        for proc in p.procs:
            await asyncio.to_thread(stop, proc)
