"""Slack through the real signed HTTP route (bot.web): events, interactions (block_actions,
view_submission) and slash commands in Slack's shapes, mutated.

Per platform: a delivery that is signed but malformed is acknowledged (200) and ignored — a
non-2xx makes Slack retry it three more times and, when failures pile up, disable the app's
event subscriptions; a body that is not one of Slack's shapes at all is 400; an oversized one
413. Never a 5xx, never an error logged by a listener, nothing half-recorded."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.slack.inbound import ACTION_COMMENT
from doubles.slack import Deliveries, Delivery, SlackDouble, Workspace
from tests.adapters.slack.conftest import SlackWeb, slack_config, start_web, stop_web
from tests.adapters.slack.test_events import ask, modal_values
from tests.conftest import Stack
from tests.fuzz.conftest import Errors, consistent, queued_executions
from tests.fuzz.strategies import hostile_text, mutated

CHANNEL = "C0GENERAL"
ALLOWED = {200, 400, 413}


@dataclass
class Target:
    sw: SlackWeb
    ws: Workspace
    deliveries: Deliveries
    thread_ts: str
    answer: Any  # the answer's chat.postMessage call: its buttons are real
    view: dict[str, Any]  # the comment modal views.open got

    def __repr__(self) -> str:
        return "Target(slack web app)"


@pytest.fixture
async def target(embedded: Stack) -> AsyncIterator[Target]:
    async with SlackDouble() as double:
        ws = double.add_workspace("T0ACME", name="Acme")
        double.add_user("T0ACME", "U0ALICE")
        double.add_user("T0ACME", "U0ADMIN", admin=True)
        sw = await start_web(embedded, double, slack_config(embedded, double, token=ws.token))
        deliveries = Deliveries()
        try:
            ts, answer = await ask(sw, ws, deliveries, "Explain DNS")
            comment = next(b for b in _buttons(answer) if b["action_id"] == ACTION_COMMENT)
            await sw.post(deliveries.block_actions(ws, "U0ALICE", CHANNEL,
                                                   answer.response["ts"], comment, thread_ts=ts))
            await sw.settle()
            [opened] = double.calls_to("views.open", ok=True)
            yield Target(sw, ws, deliveries, ts, answer, opened.params["view"])
        finally:
            await stop_web(sw)


async def deliver(target: Target, errors: Errors, delivery: Delivery) -> int:
    response = await target.sw.post(delivery)
    await target.sw.settle()
    assert response.status_code in ALLOWED, (response.status_code, response.text[:300])
    assert errors.take() == []
    await consistent(target.sw.web.ctx.runtime, queued_executions(target.sw.stack.redis.sync))
    return response.status_code


def fresh(payload: dict[str, Any]) -> dict[str, Any]:
    """A new event id (else the redelivery de-dup answers every example after the first)."""
    if isinstance(payload.get("event_id"), str):
        payload["event_id"] = f"Ev{uuid.uuid4().hex[:12].upper()}"
    return payload


def event_bases(t: Target) -> list[dict[str, Any]]:
    d, ws = t.deliveries, t.ws
    answer_ts = t.answer.response["ts"]
    mention, _ = d.app_mention(ws, "U0ALICE", CHANNEL, "what is a CNAME?")
    dm, _ = d.message(ws, "U0ALICE", "D0ALICE", "hello there", channel_type="im")
    reply, _ = d.message(ws, "U0ALICE", CHANNEL, "and TTLs?", thread_ts=t.thread_ts)
    reaction = d.reaction(ws, "U0ALICE", "+1", CHANNEL, answer_ts)
    return [json.loads(x.body) for x in (mention, dm, reply, reaction)]


@given(data=st.data())
async def test_signed_events(target: Target, errors: Errors, data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(event_bases(target)))
    payload = data.draw(mutated(base, keep=frozenset({"type"})))
    if data.draw(st.booleans()) and isinstance(payload.get("event"), dict):
        payload["event"] = data.draw(mutated(base["event"], max_mutations=3))
    await deliver(target, errors, Deliveries.json(fresh(payload)))


def _buttons(answer: Any) -> list[dict[str, Any]]:
    [actions] = [b for b in answer.params["blocks"] if b["type"] == "actions"]
    elements: list[dict[str, Any]] = actions["elements"]
    return elements


def interaction_bases(t: Target) -> list[dict[str, Any]]:
    d, ws, answer_ts = t.deliveries, t.ws, t.answer.response["ts"]
    up, _down, select, comment = _buttons(t.answer)
    chosen = {**select, "selected_option": select["options"][2]}
    rollback = {"type": "button", "action_id": "evobot:cmd:rollback", "value": "1"}
    actions = [d.block_actions(ws, "U0ALICE", CHANNEL, answer_ts, action, thread_ts=t.thread_ts)
               for action in (up, chosen, comment, rollback)]
    values = modal_values("tone", "Mention TTLs.", "Say what a TTL is.")
    submission = d.view_submission(ws, "U0ALICE", t.view, values)
    return [_payload_of(x) for x in (*actions, submission)]


def _payload_of(delivery: Delivery) -> dict[str, Any]:
    return dict(json.loads(parse_qs(delivery.body.decode())["payload"][0]))


@given(data=st.data())
async def test_signed_interactions(target: Target, errors: Errors,
                                   data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(interaction_bases(target)))
    payload = data.draw(mutated(base, keep=frozenset({"type"}), max_mutations=5))
    body = json.dumps(payload) if data.draw(st.integers(0, 9)) else data.draw(hostile_text())
    form = urlencode({"payload": _encode(body)}).encode()
    await deliver(target, errors, Delivery(form, "application/x-www-form-urlencoded"))


@given(data=st.data())
async def test_signed_slash_commands(target: Target, errors: Errors,
                                     data: st.DataObject) -> None:
    base = target.deliveries.slash_command(
        target.ws, "U0ALICE", CHANNEL, "status", response_url=target.sw.double.response_url())
    fields = {k: v[0] for k, v in parse_qs(base.body.decode()).items()}
    text = data.draw(st.one_of(st.sampled_from(["", "help", "status", "history 999999999999",
                                                "diff 1 99", "rollback -1", "pause", "tools",
                                                "evolutions", "apikey", "rollback"]),
                               hostile_text()))
    fields["text"] = text
    mutated_fields = data.draw(mutated(fields, keep=frozenset({"command"}), max_mutations=3))
    form = {k: _encode(v if isinstance(v, str) else json.dumps(v))
            for k, v in mutated_fields.items()}
    await deliver(target, errors, Delivery(urlencode(form).encode(),
                                           "application/x-www-form-urlencoded"))


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8


@given(body=st.one_of(st.binary(max_size=2_000), hostile_text().map(_encode)),
       content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                                     "", "text/plain"]))
async def test_signed_garbage(target: Target, errors: Errors, body: bytes,
                              content_type: str) -> None:
    await deliver(target, errors, Delivery(body, content_type))
