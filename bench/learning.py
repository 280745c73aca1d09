"""How fast does the agent learn what its users want? Simulated users with hidden preferences
(a language, a length, a format, a fixed prefix, a tone) rate the answers of a scripted model;
the real engine (SQLite + embedded Redis, real RQ worker, real evolution loop) learns from it.

    .venv/bin/python bench/learning.py [--seeds 5] [--answers 12]

The simulated world, so the figures measure the engine's loop and not a model's wit:
- the agent model follows the rules its system prompt carries: a rule that names a style
  ("French", "bullet", …) is applied; a style no rule names shows up by chance (30 %), so a
  user who never explains still sees answers they like now and then;
- a user rates 5 when the answer has the style they want and 2 otherwise; with comments on,
  their first low rating says what they want ("answer in French please");
- the reflector turns a comment into a rule; without comments it looks for a style every
  well-rated answer had and no badly rated one had, and proposes it;
- the judge is a capable one: it prefers the answer the user would prefer.

Reported per preference and mode: rated answers until the preference is obeyed (the answer has
the style *because* a rule asks for it; median and max over seeds), replay regressions, and LLM
calls and tokens per evolution. Targets: stated in a comment → obeyed from the next answer;
shown only by ratings → within 5 rated answers; at most 12 LLM calls per evolution.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import statistics
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from bot.config import Config
from bot.wiring import build_runtime, close_runtime, connect_redis
from bot.worker import install_factory, make_thread_worker
from engine.fakes import RecordingNotifier
from engine.jobs import close_thread_runtime
from engine.llm import scripted
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script
from engine.notify import NotifierRouter
from engine.runtime import Runtime
from engine.service import EvobotService
from engine.storage.models import Evolution
from engine.types import FeedbackSource, InboundFeedback, InboundMessage

MODEL = "learner"
CHANCE = 30  # percent: how often a style nobody asked for shows up anyway
EVOLUTION_PURPOSES = {"reflect", "replay", "judge", "tool_maker"}


@dataclass(frozen=True)
class Preference:
    name: str
    keyword: str  # a rule naming this word makes the agent apply the style
    marker: str  # what an answer in this style contains
    comment: str  # what a user who explains says
    rule: str  # what the reflector proposes when it infers it from ratings


PREFERENCES = [
    Preference("language", "french", "(en français)", "answer in French please",
               "Answer in French."),
    Preference("length", "short", "(short: 3 bullets)",
               "too long, keep it short: at most three bullet points",
               "Keep answers short: at most three bullet points."),
    Preference("format", "table", "| table |", "put it in a table please",
               "Present the answer as a table."),
    Preference("prefix", "tl;dr", "TL;DR:", "start with a TL;DR line",
               "Start every answer with a TL;DR line."),
    Preference("tone", "formal", "(formal)", "be more formal please",
               "Use a formal tone."),
]
OBJECTIVES = [
    "Summarise last quarter's sales", "Plan a team offsite", "Draft a welcome email",
    "Explain our refund policy", "List risks of the launch", "Compare two CRM tools",
    "Write a standup update", "Outline a hiring plan", "Suggest names for the project",
    "Review this budget", "Prepare interview questions", "Describe the onboarding steps",
    "Estimate the cloud costs", "Draft a customer survey", "Explain the new pricing",
]


# --- the simulated model ------------------------------------------------------------------


@dataclass
class World:
    """What the scripted model knows: which user preference this run is about."""

    preference: Preference = PREFERENCES[0]
    tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, request: ScriptedRequest, reply: str) -> None:
        prompt = sum(len(str(m.get("content") or "")) for m in request.messages) // 4
        with self.lock:
            self.tokens += prompt + len(reply) // 4 + 1


WORLD = World()


def _rules(system: str) -> list[str]:
    return [line.split(".", 1)[1].lower() for line in system.splitlines()
            if line[:1].isdigit() and "." in line]


def _by_chance(objective: str, preference: Preference) -> bool:
    digest = hashlib.sha256(f"{objective}|{preference.name}".encode()).digest()
    return digest[0] * 100 // 256 < CHANCE


def agent(request: ScriptedRequest) -> str:
    rules = _rules(request.system)
    objective = request.last_user.strip()
    styles = [p.marker for p in PREFERENCES
              if any(p.keyword in rule for rule in rules) or _by_chance(objective, p)]
    return " ".join([*styles, f"Answer to: {objective}"])


def reflector(request: ScriptedRequest) -> str:
    feedback = (request.data() or {}).get("feedback", [])
    learnings = [_from_comment(item) for item in feedback
                 if item.get("comment") and (item.get("rating") or 5) <= 2]
    if not learnings:
        learnings = _inferred(feedback)
    return json.dumps({"learnings": learnings})


def _learning(text: str, ids: list[Any], confidence: float, why: str) -> dict[str, Any]:
    return {"type": "prompt_rule", "issue": why, "suggested_change": text, "rationale": why,
            "confidence": confidence, "impact": 0.7, "target_rule": None, "action": "add",
            "feedback_ids": ids}


def _from_comment(item: dict[str, Any]) -> dict[str, Any]:
    comment = str(item["comment"]).strip().rstrip(".!")
    return _learning(comment[0].upper() + comment[1:] + ".", [item.get("feedback_id")], 0.9,
                     f"a user asked: {comment}")


def _inferred(feedback: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A style every well-rated answer had and no badly rated one had."""
    good = [f for f in feedback if (f.get("rating") or 0) >= 4]
    bad = [f for f in feedback if 0 < (f.get("rating") or 0) <= 2]
    if not good or not bad:
        return []
    for preference in PREFERENCES:
        if all(preference.marker in str(f.get("answer", "")) for f in good) and not any(
            preference.marker in str(f.get("answer", "")) for f in bad
        ):
            ids = [f.get("feedback_id") for f in good + bad]
            return [_learning(preference.rule, ids, 0.8, "well-rated answers all did this")]
    return []


def judge(request: ScriptedRequest) -> str:
    data = request.data() or {}
    marker = WORLD.preference.marker
    a, b = marker in str(data.get("A", "")), marker in str(data.get("B", ""))
    winner = "A" if a and not b else "B" if b and not a else "tie"
    return json.dumps({"winner": winner, "reason": "the answer the user would prefer"})


def learner(request: ScriptedRequest) -> ScriptedReply:
    roles = {"reflect": reflector, "judge": judge}
    reply = roles.get(request.purpose, agent)(request)
    WORLD.count(request, reply)
    return ScriptedReply(content=reply)


register_script(MODEL, learner)


# --- one simulated user ---------------------------------------------------------------------


@dataclass
class RunResult:
    # rated answers until the preference is obeyed on purpose: counted from the comment that
    # states it (1 = the next answer), or from the first answer when nobody explains
    obeyed_after: int | None
    evolutions: int = 0
    regressions: int = 0
    calls_per_evolution: list[int] = field(default_factory=list)
    tokens_per_evolution: list[int] = field(default_factory=list)


def drain(config: Config, redis: Any, router: Any) -> None:
    """Run a real RQ worker (its own thread and runtime) until the queues are empty."""
    install_factory(config, router, redis)
    worker = make_thread_worker(redis, name=f"bench-{random.getrandbits(32):x}")

    def work() -> None:
        try:
            worker.work(burst=True, logging_level="ERROR")
        finally:
            close_thread_runtime()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


@dataclass
class Env:
    config: Config
    redis: Any
    notifier: RecordingNotifier

    def router(self) -> NotifierRouter:
        return NotifierRouter({"local": self.notifier})

    async def drain(self) -> None:
        await asyncio.to_thread(drain, self.config, self.redis, self.router)


async def simulate(rt: Runtime, env: Env, tenant: str, comments: bool,
                   objectives: list[str]) -> RunResult:
    service = EvobotService(rt)
    result = RunResult(obeyed_after=None)
    explained_at: int | None = None
    for rated, objective in enumerate(objectives):
        accepted = await service.handle_message(InboundMessage(
            tenant_id=tenant, channel_id="c", user_id="u", text=objective,
            message_id=f"{tenant}-{rated}"))
        assert accepted is not None
        await env.drain()
        answer = next(e.text for e in env.notifier.events
                      if e.type == "answer" and e.execution_id == accepted.execution_id)
        if await _obeys(rt, tenant, answer):
            result.obeyed_after = rated - (explained_at or 0)
            break
        happy = WORLD.preference.marker in answer
        explains = comments and not happy and explained_at is None
        comment = WORLD.preference.comment if explains else None
        explained_at = rated if explains else explained_at
        await service.handle_feedback(InboundFeedback(
            tenant_id=tenant, user_id="u", source=FeedbackSource.REACTION,
            rating=5 if happy else 2, comment=comment, execution_id=accepted.execution_id))
        await _evolve(env, result)
    await _replay_regressions(rt, tenant, result)
    return result


async def _obeys(rt: Runtime, tenant: str, answer: str) -> bool:
    async with rt.repo(tenant) as repo:
        rules = [r.text.lower() for r in (await repo.active_version()).prompt.rules]
    wanted = WORLD.preference
    return wanted.marker in answer and any(wanted.keyword in rule for rule in rules)


async def _evolve(env: Env, result: RunResult) -> None:
    before_calls, before_tokens = len(scripted.CALLS), WORLD.tokens
    await env.drain()
    calls = [c for c in scripted.CALLS[before_calls:] if c.purpose in EVOLUTION_PURPOSES]
    if any(c.purpose == "reflect" for c in calls):
        result.evolutions += 1
        result.calls_per_evolution.append(len(calls))
        result.tokens_per_evolution.append(WORLD.tokens - before_tokens)


async def _replay_regressions(rt: Runtime, tenant: str, result: RunResult) -> None:
    async with rt.sessions() as session:
        rows = await session.scalars(select(Evolution).where(Evolution.tenant_id == tenant))
        for row in rows:
            cases = (row.validation or {}).get("replay", {}).get("cases", [])
            result.regressions += sum(1 for case in cases if case.get("outcome") == "worse")


# --- the benchmark --------------------------------------------------------------------------


async def run_all(seeds: int, answers: int) -> list[tuple[Preference, bool, list[RunResult]]]:
    config = Config(DATA_DIR=Path(tempfile.mkdtemp(prefix="evobot-learning-")),
                    LLM_MODEL=f"scripted/{MODEL}", EVOBOT_ALLOW_MODEL_REQUESTS=False,
                    EVOBOT_JOB_RETRY_INTERVALS="0", EVOBOT_PERIODIC_EVOLUTION_S=0)
    env = Env(config, connect_redis(config), RecordingNotifier())
    rt = await build_runtime(config, env.router(), env.redis)
    table: list[tuple[Preference, bool, list[RunResult]]] = []
    try:
        for preference in PREFERENCES:
            WORLD.preference = preference
            for comments in (True, False):
                runs = []
                for seed in range(seeds):
                    objectives = random.Random(seed).sample(OBJECTIVES, k=answers)
                    tenant = f"local:{preference.name}-{'c' if comments else 'r'}-{seed}"
                    runs.append(await simulate(rt, env, tenant, comments, objectives))
                table.append((preference, comments, runs))
    finally:
        await close_runtime(rt)
    return table


def _figure(values: list[int]) -> str:
    return f"{statistics.median(values):g} / {max(values)}" if values else "–"


def report(results: list[tuple[Preference, bool, list[RunResult]]], answers: int) -> Table:
    table = Table(title="evobot learning from simulated users (scripted model, real engine)")
    for column in ("preference", "feedback", "rated answers until obeyed (median / max)",
                   "never obeyed", "evolutions", "replay regressions",
                   "LLM calls / evolution (median / max)", "tokens / evolution (median)"):
        table.add_column(column)
    for preference, comments, runs in results:
        obeyed = [r.obeyed_after for r in runs if r.obeyed_after is not None]
        calls = [c for r in runs for c in r.calls_per_evolution]
        tokens = [t for r in runs for t in r.tokens_per_evolution]
        table.add_row(
            preference.name, "comment" if comments else "ratings only", _figure(obeyed),
            f"{len(runs) - len(obeyed)} of {len(runs)} (in {answers})",
            str(sum(r.evolutions for r in runs)), str(sum(r.regressions for r in runs)),
            _figure(calls), f"{statistics.median(tokens):g}" if tokens else "–",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description="learning speed with simulated users")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--answers", type=int, default=12)
    args = parser.parse_args()
    console = Console()
    with console.status("simulating users…"):
        results = asyncio.run(run_all(args.seeds, min(args.answers, len(OBJECTIVES))))
    console.print(report(results, args.answers))


if __name__ == "__main__":
    main()
