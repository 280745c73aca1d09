"""Streaming answers: how long until the user sees the first words, and the whole answer,
with the answer streamed vs posted whole — per platform: the console, the REST API's event
feed, and Slack and Telegram through their HTTP doubles (doubles/) with the real notifiers,
wired as `evobot` wires them (bot/platforms.py) — plus the platform calls each answer cost.
The model is scripted: N tokens at a fixed rate, so generation takes N / rate seconds.

When text is visible: the console, when its notifier has it (the live view redraws 8 times a
second); the API, when a client of the event feed receives it; Slack and Telegram, when the
double shows it (their timelines). Calls: what the double recorded (every Web / Bot API call,
reactions and typing included); for the console and the API, the answer events delivered.

    .venv/bin/python bench/streaming.py [--tokens 60] [--rate 20] [--runs 3] [--every 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.api.events import API_CHANNEL, EventFeed, EventHub, WithFeed
from adapters.console.app import ConsoleNotifier
from bot.config import Config
from bot.platforms import make_notifier
from bot.wiring import RedisHandle, build_runtime, close_runtime, connect_redis
from bot.worker import EmbeddedWorker
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script
from engine.notify import NotifierRouter
from engine.service import EvobotService
from engine.types import AnswerDelta, AnswerReady, Delivery, InboundMessage, OutboundEvent

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # doubles/ isn't installed
from doubles.slack import SlackDouble
from doubles.telegram import TOKEN, BotApiDouble

SCRIPT = "bench-writer"


@dataclass
class Platform:
    """Where one kind of user asks, and how to read what they saw."""

    name: str
    tenant_id: str
    channel_id: str
    thread: bool = False  # Slack: the answer goes in the mention's thread


PLATFORMS = [
    Platform("console", "local:bench", "console"),
    Platform("api", "api:bench", API_CHANNEL),
    Platform("slack", "slack:T0BENCH", "C0BENCH", thread=True),
    Platform("telegram (private chat)", "telegram:501", "501"),
    Platform("telegram (group)", "telegram:-100501", "-100501"),
]


@dataclass
class Sample:
    first_s: float | None
    complete_s: float | None
    calls: int


@dataclass
class Results:
    rows: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)

    def add(self, platform: str, mode: str, sample: Sample) -> None:
        self.rows.setdefault((platform, mode), []).append(sample)


class TimedConsole(ConsoleNotifier):
    """The console's notifier, noting when each answer text reached it."""

    def __init__(self) -> None:
        super().__init__(Console(file=io.StringIO(), width=100))
        self.shown: list[tuple[float, int, str]] = []  # (monotonic time, execution id, text)

    async def deliver(self, event: OutboundEvent) -> Delivery:
        delivery = await super().deliver(event)
        if isinstance(event, AnswerDelta | AnswerReady):
            self.shown.append((time.monotonic(), event.execution_id, event.text))
        return delivery


@dataclass
class Bench:
    config: Config
    redis: RedisHandle
    slack: SlackDouble
    telegram: BotApiDouble
    console: TimedConsole
    hub: EventHub
    answer: str  # what the scripted model writes
    feed: dict[int, list[tuple[float, dict[str, Any]]]] = field(default_factory=dict)

    def router(self) -> NotifierRouter:
        """As `evobot` wires its platforms, plus the console (beside the feed too, which
        tells the benchmark when each answer is delivered)."""
        router = make_notifier(self.config)
        feed = EventFeed(connect_redis(self.config).asyncio_client())
        router.register("local", WithFeed(self.console, feed))
        return router


def writer(tokens: int, rate: float) -> str:
    text = " ".join(f"w{i}" for i in range(tokens))

    def script(request: ScriptedRequest) -> ScriptedReply:
        return ScriptedReply(content=text, token_delay_s=1 / rate)

    register_script(SCRIPT, script)
    return text


def config_for(data_dir: Path, every_s: float, slack: SlackDouble, token: str,
               telegram: BotApiDouble) -> Config:
    values: dict[str, Any] = {
        "DATA_DIR": data_dir, "LLM_MODEL": f"scripted/{SCRIPT}",
        "EVOBOT_ALLOW_MODEL_REQUESTS": False, "EVOBOT_JOB_RETRY_INTERVALS": "0",
        "EVOBOT_STREAM_EVERY_S": every_s, "LLM_TIMEOUT_S": 120.0,
        "SLACK_BOT_TOKEN": token, "SLACK_API_URL": slack.api_url,
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": telegram.api_url,
    }
    return Config(**values)


def seen_text(bench: Bench, platform: Platform, execution_id: int, since: float
              ) -> list[tuple[float, str]]:
    """(when, text) of each answer text the user could see on the platform."""
    if platform.name == "console":
        return [(at, text) for at, eid, text in bench.console.shown if eid == execution_id]
    if platform.name == "api":
        return [(at, e["data"]["text"]) for at, e in bench.feed.get(execution_id, [])
                if e["type"] in ("answer_delta", "answer")]
    timeline: list[Any] = (bench.slack.timeline if platform.name == "slack"
                           else bench.telegram.timeline)
    channel = platform.channel_id
    return [(s.at, s.text) for s in timeline if s.at >= since and s.text and str(
        getattr(s, "channel", getattr(s, "chat_id", ""))) == channel]


def calls_made(bench: Bench, platform: Platform, execution_id: int, before: int) -> int:
    if platform.name == "console":
        return sum(1 for _, eid, _ in bench.console.shown if eid == execution_id)
    if platform.name == "api":
        return len(seen_text(bench, platform, execution_id, 0))
    double = bench.slack if platform.name == "slack" else bench.telegram
    return len(double.calls) - before


def call_count(bench: Bench, platform: Platform) -> int:
    if platform.name == "slack":
        return len(bench.slack.calls)
    return len(bench.telegram.calls) if platform.name.startswith("telegram") else 0


async def follow(bench: Bench, tenants: list[str], stop: asyncio.Event) -> None:
    """Note every answer event of the benchmark's tenants as a feed client receives it."""
    async def one(tenant: str) -> None:
        async with bench.hub.follow(tenant) as queue:
            while not stop.is_set():
                event = await queue.get()
                if event.get("execution_id") is not None:
                    bench.feed.setdefault(int(event["execution_id"]), []).append(
                        (time.monotonic(), event))

    tasks = [asyncio.create_task(one(t)) for t in tenants]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def answered(bench: Bench, execution_id: int, within_s: float = 120) -> None:
    """The feed's `answer` comes after the platform's delivery of it (WithFeed)."""
    deadline = time.monotonic() + within_s
    while not any(e["type"] in ("answer", "execution_failed")
                  for _, e in bench.feed.get(execution_id, [])):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer for execution {execution_id}")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the double records the last call as the notifier reads it


async def ask(bench: Bench, service: EvobotService, platform: Platform, n: int) -> Sample:
    ts = f"{1000 + n}.000100"
    message = InboundMessage(
        tenant_id=platform.tenant_id, channel_id=platform.channel_id, user_id="501",
        text=f"write {n}", message_id=ts if platform.thread else str(42 + n),
        thread_id=ts if platform.thread else None)
    before = call_count(bench, platform)
    start = time.monotonic()
    accepted = await service.handle_message(message)
    assert accepted is not None
    await answered(bench, accepted.execution_id)
    seen = seen_text(bench, platform, accepted.execution_id, start)
    first = next((at - start for at, text in seen if text.strip()), None)
    complete = next((at - start for at, text in seen if bench.answer in text), None)
    return Sample(first, complete, calls_made(bench, platform, accepted.execution_id, before))


async def run_mode(mode: str, every_s: float, args: argparse.Namespace, answer: str,
                   results: Results) -> None:
    async with SlackDouble() as slack:
        telegram = await BotApiDouble().start()
        workspace = slack.add_workspace("T0BENCH")
        slack.add_channel("T0BENCH", "C0BENCH")
        config = config_for(Path(tempfile.mkdtemp(prefix="evobot-bench-")), every_s, slack,
                            workspace.token, telegram)
        redis = connect_redis(config)
        hub = EventHub(redis.asyncio_client())
        await hub.start()
        bench = Bench(config, redis, slack, telegram, TimedConsole(), hub, answer)
        try:
            await measure(bench, mode, args, results)
        finally:
            await hub.stop()
            await telegram.stop()


async def measure(bench: Bench, mode: str, args: argparse.Namespace, results: Results) -> None:
    runtime = await build_runtime(bench.config, bench.router(), bench.redis)
    worker = EmbeddedWorker(bench.config, bench.router, bench.redis).start()
    service = EvobotService(runtime)
    stop = asyncio.Event()
    following = asyncio.create_task(follow(bench, [p.tenant_id for p in PLATFORMS], stop))
    await asyncio.sleep(0.2)  # the followers are subscribed
    try:
        for platform in PLATFORMS:
            await ask(bench, service, platform, 0)  # warm-up: clients, tenant rows, caches
            for n in range(1, args.runs + 1):
                results.add(platform.name, mode, await ask(bench, service, platform, n))
    finally:
        stop.set()
        await following
        await worker.stop()
        await close_runtime(runtime)


def median(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.2f}" if known else "—"


def table(results: Results, args: argparse.Namespace) -> Table:
    title = (f"answers of {args.tokens} tokens at {args.rate:g}/s ({args.tokens / args.rate:.1f}"
             f" s to write), whole or streamed (EVOBOT_STREAM_EVERY_S={args.every:g}); "
             f"median of {args.runs}")
    out = Table(title=title)
    for column in ("platform", "answer", "first text s", "complete s", "calls / answer"):
        out.add_column(column, justify="left" if column in ("platform", "answer") else "right")
    for (platform, mode), samples in sorted(results.rows.items(), key=_order):
        out.add_row(platform, mode, median([s.first_s for s in samples]),
                    median([s.complete_s for s in samples]),
                    f"{statistics.fmean(s.calls for s in samples):.1f}")
    return out


def _order(item: tuple[tuple[str, str], Any]) -> tuple[int, bool]:
    (platform, mode), _ = item  # by platform, the answer posted whole first
    return [p.name for p in PLATFORMS].index(platform), mode != "whole"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--rate", type=float, default=20.0, help="tokens per second")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--every", type=float, default=0.5, help="EVOBOT_STREAM_EVERY_S")
    args = parser.parse_args()
    answer = writer(args.tokens, args.rate)
    results = Results()
    console = Console()
    modes: list[tuple[str, float]] = [("whole", 0.0), ("streamed", args.every)]
    for mode, every_s in modes:
        with console.status(f"{mode}: {args.runs} answers per platform…"):
            await run_mode(mode, every_s, args, answer, results)
    console.print(table(results, args))


if __name__ == "__main__":
    asyncio.run(main())
