"""End to end with real processes: `evobot worker` over Redis, and `evobot telegram` (long
polling) or `evobot serve` (webhook), all talking HTTP to the Bot API double.

message → answer with keyboard → 👎 reaction + category + comment → diff announced in that chat →
/rollback by a non-admin (refused) and by a group admin (confirmed); a second chat stays
isolated throughout.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from doubles import telegram as u
from doubles.telegram import BOT_USERNAME, TOKEN, BotApiDouble, free_port
from tests.adapters.telegram.conftest import SECRET
from tests.conftest import need_service

# the subprocesses share one system Redis database (flushed around each test)
REDIS_URL = os.environ.get("EVOBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
MENTION = f"@{BOT_USERNAME}"
GROUP_A = u.group(-1001001)
GROUP_B = u.group(-1002002)
ALICE = u.user(601, "Alice")  # member of A
ADMIN = u.user(602, "Ada")  # administrator of A
CAROL = u.user(603, "Carol")  # member of B
PROCESS_TIMEOUT = 90.0

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Processes:
    root: Path
    env: dict[str, str]
    running: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def run(self, *args: str, timeout: float = PROCESS_TIMEOUT) -> None:
        log = self.root / f"{args[0]}-once.log"
        with log.open("wb") as out:
            done = subprocess.run([sys.executable, "-m", "bot.cli", *args], env=self.env,
                                  cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False)
        assert done.returncode == 0, log.read_text()[-3000:]

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.root / f"{args[0]}.log"
        out = log.open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "--log-level", "INFO", *args],
                                env=self.env, cwd=self.root, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.running.append((args[0], proc, log))
        return proc

    def alive(self) -> None:
        for name, proc, log in self.running:
            assert proc.poll() is None, f"`evobot {name}` exited:\n{log.read_text()[-4000:]}"

    def logs(self) -> str:
        return "\n".join(f"===== evobot {name} =====\n{log.read_text()[-4000:]}"
                         for name, _proc, log in self.running)

    def stop(self) -> None:
        for _name, proc, _log in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc, _log in self.running:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture
def redis_db() -> Iterator[Redis]:
    need_service("Redis", 6379)
    client = Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
async def procs(tmp_path: Path, double: BotApiDouble, redis_db: Redis
                ) -> AsyncIterator[Processes]:
    data = tmp_path / "data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "SLACK_", "EVOBOT_", "DATABASE_URL", "REDIS_URL"))}
    env.update({
        "DATA_DIR": str(data),
        "DATABASE_URL": f"sqlite+aiosqlite:///{data / 'evobot.db'}",
        "REDIS_URL": REDIS_URL,
        "LLM_MODEL": "scripted/default",
        "EVOBOT_ALLOW_MODEL_REQUESTS": "0",
        "EVOBOT_JOB_RETRY_INTERVALS": "0,0",
        "EVOBOT_RECONCILE_EVERY_S": "3600",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": double.api_url,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "EVOBOT_TELEGRAM_PACE_S": "0",
        "EVOBOT_TELEGRAM_POLL_TIMEOUT_S": "1",
        "EVOBOT_HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    })
    processes = Processes(tmp_path, env)
    await asyncio.to_thread(processes.run, "migrate")
    try:
        yield processes
    finally:
        await asyncio.to_thread(processes.stop)


def _answers(double: BotApiDouble, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in double.sent(chat_id) if "fb:" in str(m.get("reply_markup") or "")]


def _execution_id(message: dict[str, Any]) -> int:
    match = re.search(r"fb:(\d+):", str(message["reply_markup"]))
    assert match, message
    return int(match.group(1))


async def _wait_message(double: BotApiDouble, procs: Processes, chat_id: int,
                        needle: str, *, after: int = 0, within: float = 60.0
                        ) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        procs.alive()
        return next((m for m in double.sent(chat_id)
                     if m["message_id"] > after and needle in m["text"]), None)

    try:
        return await double.wait_for(probe, within=within, what=f"{needle!r} in {chat_id}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{procs.logs()}") from None


async def _wait_answer(double: BotApiDouble, procs: Processes, chat_id: int, count: int
                       ) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        procs.alive()
        found = _answers(double, chat_id)
        return found[count - 1] if len(found) >= count else None

    try:
        return await double.wait_for(probe, within=60, what=f"answer {count} in {chat_id}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{procs.logs()}") from None


def _feedback_of(procs: Processes, user_id: int) -> tuple[Any, ...]:
    """(rating, category, comment, from_admin) of the user's feedback row, from the database
    the processes share."""
    path = procs.env["DATABASE_URL"].split("///", 1)[1]
    with closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT rating, category, comment, from_admin FROM feedback "
                         "WHERE user_id = ?", (str(user_id),)).fetchone()
    assert row is not None
    return tuple(row)


async def conversation(double: BotApiDouble, procs: Processes, send: Send) -> None:
    double.set_member(GROUP_A.id, ADMIN.id, "administrator")

    await send(u.text_update(GROUP_A, ALICE, "no mention, just chatting"))
    await send(u.text_update(GROUP_A, ALICE, f"{MENTION} What is the capital of France?"))
    await send(u.text_update(GROUP_B, CAROL, f"{MENTION} What is the capital of Italy?"))
    answer = await _wait_answer(double, procs, GROUP_A.id, 1)
    assert answer["text"].startswith("Answer to: What is the capital of France?")
    assert answer["parse_mode"] == "HTML" and "<i>v1 · " in answer["html"]
    keyboard = answer["reply_markup"]["inline_keyboard"]
    assert [b["text"] for row in keyboard for b in row] == ["👍", "👎", "💬", "1", "2", "3",
                                                            "4", "5"]
    assert any(c["chat_id"] == GROUP_A.id and c["action"] == "typing"
               for c in double.of("sendChatAction"))
    answer_b = await _wait_answer(double, procs, GROUP_B.id, 1)
    assert "Italy" in answer_b["text"]
    execution_id = _execution_id(answer)

    # 👎 on the answer, then 💬 → categories → Language → ForceReply → the reply is the comment
    await send(u.reaction_update(GROUP_A, ALICE, answer["message_id"], [], ["👎"]))
    await send(u.callback_update(GROUP_A, ALICE, answer["message_id"],
                                 f"fb:{execution_id}:c", text=answer["text"]))
    categories = await _wait_message(double, procs, GROUP_A.id, "what was the problem")
    [language] = [b["callback_data"] for row in categories["reply_markup"]["inline_keyboard"]
                  for b in row if b["text"] == "Language"]
    await send(u.callback_update(GROUP_A, ALICE, categories["message_id"], language,
                                 text=categories["text"]))
    prompt = await _wait_message(double, procs, GROUP_A.id,
                                 f"comment on answer #{execution_id} (Language).")
    assert prompt["reply_markup"]["force_reply"] is True
    await send(u.text_update(GROUP_A, ALICE, "answer in French please",
                             reply_to=u.bot_message(GROUP_A, prompt["message_id"],
                                                    prompt["text"])))

    # the evolution is announced in that chat: a canary for Alice (a member asked), the diff
    # in <pre>, rationale, replay
    announced = await _wait_message(double, procs, GROUP_A.id, "(canary): v1 → v2",
                                    within=90)
    assert "canary for you and 20% of the group" in announced["text"]
    assert '<pre><code class="language-diff">' in announced["html"]
    assert "+1. Answer in French please." in announced["text"]
    assert "replayed" in announced["text"] and "answer in French please" in announced["text"]
    [[roll_back]] = announced["reply_markup"]["inline_keyboard"]
    assert (roll_back["text"], roll_back["callback_data"]) == ("Stop canary", "do:rollback:1")

    # the web/polling process recorded the category; the comment kept it (Alice: no admin)
    assert await asyncio.to_thread(_feedback_of, procs, ALICE.id) == (
        2, "language", "answer in French please", 0)

    # the new version answers Alice in A; B is still on v1 and heard nothing of A's evolution
    await send(u.text_update(GROUP_A, ALICE, f"{MENTION} And of Spain?"))
    await send(u.text_update(GROUP_B, CAROL, f"{MENTION} And of Spain?"))
    second = await _wait_answer(double, procs, GROUP_A.id, 2)
    assert "[following: Answer in French please.]" in second["text"]
    assert "<i>v2 · " in second["html"]
    second_b = await _wait_answer(double, procs, GROUP_B.id, 2)
    assert "following" not in second_b["text"] and "<i>v1 · " in second_b["html"]

    # /rollback: refused for a member, done for an admin (getChatMember decides): the live
    # canary is dropped
    last = max(m["message_id"] for m in double.sent(GROUP_A.id))
    await send(u.text_update(GROUP_A, ALICE, "/rollback"))
    await _wait_message(double, procs, GROUP_A.id, "Only workspace or chat admins can use",
                        after=last)
    await send(u.text_update(GROUP_A, ADMIN, f"/rollback@{BOT_USERNAME}"))
    await _wait_message(double, procs, GROUP_A.id, "Rolled back: v2 → v1", after=last)
    await _wait_message(double, procs, GROUP_A.id, f"Rolled back by {ADMIN.id}: v2 → v1",
                        after=last)
    checked = {(c["chat_id"], c["user_id"]) for c in double.of("getChatMember")}
    assert checked == {(GROUP_A.id, ALICE.id), (GROUP_A.id, ADMIN.id)}

    await send(u.text_update(GROUP_A, ALICE, f"{MENTION} And of Portugal?"))
    third = await _wait_answer(double, procs, GROUP_A.id, 3)
    assert "following" not in third["text"] and "<i>v1 · " in third["html"]

    # isolation: nothing of A's loop reached B; the unaddressed message made no answer
    texts_b = " ".join(m["text"] for m in double.sent(GROUP_B.id))
    assert "French" not in texts_b and "evolved" not in texts_b and "Rolled" not in texts_b
    assert not any("just chatting" in m["text"] for m in double.sent(GROUP_A.id))
    assert len(_answers(double, GROUP_A.id)) == 3 and len(_answers(double, GROUP_B.id)) == 2
    # each update acted once (the webhook test delivers every update twice)
    texts_a = [m["text"] for m in double.sent(GROUP_A.id)]
    assert sum("comment on answer #" in t for t in texts_a) == 1
    assert sum("Alice: Language" in t for t in texts_a) == 1  # the settled category message
    assert sum(t.startswith("Rolled back: v2 → v1") for t in texts_a) == 1
    assert sum("Only workspace or chat admins" in t for t in texts_a) == 1
    assert not any("no earlier version" in t for t in texts_a)
    assert len(double.of("setMessageReaction")) == 1  # the ✍ on the comment
    procs.alive()


async def test_polling_with_a_real_worker(double: BotApiDouble, procs: Processes) -> None:
    procs.start("worker")
    procs.start("telegram")

    async def send(update: dict[str, Any]) -> None:
        await double.push(update)

    await conversation(double, procs, send)
    assert double.of("setMyCommands")
    [polling] = {tuple(c.get("allowed_updates") or ()) for c in double.of("getUpdates")}
    assert polling == ("message", "callback_query", "message_reaction")
    assert double.of("deleteWebhook")  # polling bootstraps by removing any webhook


async def test_webhook_with_a_real_worker(double: BotApiDouble, procs: Processes) -> None:
    procs.start("worker")
    procs.start("serve")
    base = f"http://127.0.0.1:{procs.env['PORT']}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROCESS_TIMEOUT
        while True:
            procs.alive()
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert loop.time() < deadline, procs.logs()
            await asyncio.sleep(0.3)

        hello = u.text_update(u.private(ALICE.id), ALICE, "hello")
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            response = await client.post("/telegram/webhook", json=hello, headers=headers)
            assert response.status_code == 403
        good = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        for body in (b"{nope", b'{"update_id": 1, "message": {"text": "no chat"}}'):
            response = await client.post("/telegram/webhook", content=body, headers={
                **good, "content-type": "application/json"})
            assert response.status_code == 400
        assert not double.sent(ALICE.id)  # nothing recorded, nothing answered

        async def send(update: dict[str, Any]) -> None:
            response = await client.post("/telegram/webhook", json=update, headers=good)
            assert response.status_code == 200, response.text
            again = await client.post("/telegram/webhook", json=update, headers=good)
            assert again.status_code == 200  # a redelivery: handled once (see the counts)

        await conversation(double, procs, send)
        metrics = (await client.get("/metrics")).text
        assert 'method="POST",route="/telegram/webhook",status="403"' in metrics
