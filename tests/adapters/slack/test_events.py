"""Signed deliveries to /slack/events in Slack's documented shapes, against the real web app
(bot.web) with the Slack double behind SLACK_API_URL."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from adapters.slack import inbound, outbound
from doubles.slack import Deliveries, Delivery, Workspace
from engine.commands import COMMANDS, listed
from tests.adapters.slack.conftest import SlackWeb

CHANNEL = "C0GENERAL"


async def ask(sw: SlackWeb, ws: Workspace, deliveries: Deliveries, text: str,
              user: str = "U0ALICE", channel: str = CHANNEL) -> tuple[str, Any]:
    """Mention the bot, run the worker; (objective ts, the answer's chat.postMessage call)."""
    delivery, ts = deliveries.app_mention(ws, user, channel, text)
    assert (await sw.post(delivery)).status_code == 200
    await sw.drain()
    answers = [c for c in sw.double.posts(channel) if c.params.get("thread_ts") == ts]
    assert answers, sw.double.calls
    return ts, answers[-1]


# --- the request gate: signature, freshness, shape, retries ---------------------------------


async def test_url_verification(local_slack: SlackWeb, deliveries: Deliveries) -> None:
    response = await local_slack.post(deliveries.url_verification("abc123"))
    assert response.status_code == 200
    assert response.json() == {"challenge": "abc123"}


async def test_bad_signature_is_401_and_nothing_is_recorded(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    delivery, _ = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, "hello")
    response = await local_slack.post(delivery, secret="not-the-secret")
    assert response.status_code == 401
    unsigned = await local_slack.client.post("/slack/events", content=delivery.body,
                                             headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    tampered = Delivery(delivery.body.replace(b"hello", b"HELLO"), delivery.content_type)
    headers = delivery.headers("8f742231b10e8888abcd99yyyzzz85a5")
    assert (await local_slack.client.post("/slack/events", content=tampered.body,
                                          headers=headers)).status_code == 401
    assert await local_slack.executions() == []
    assert local_slack.double.calls == []  # not even auth.test


async def test_stale_timestamp_is_401(local_slack: SlackWeb, workspace: Workspace,
                                      deliveries: Deliveries) -> None:
    delivery, _ = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, "hello")
    old = int(time.time()) - 6 * 60
    assert (await local_slack.post(delivery, timestamp=old)).status_code == 401
    future = int(time.time()) + 6 * 60
    assert (await local_slack.post(delivery, timestamp=future)).status_code == 401
    assert await local_slack.executions() == []


async def test_malformed_bodies_are_400(local_slack: SlackWeb) -> None:
    for body, content_type in [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"no": "type"}', "application/json"),
        (b"payload=%7Bbroken", "application/x-www-form-urlencoded"),
        (b"foo=bar", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
        (b"\xff\xfe", "application/json"),
    ]:
        response = await local_slack.post(Delivery(body, content_type))
        assert response.status_code == 400, body
    assert await local_slack.executions() == []


async def test_signed_but_malformed_events_are_acknowledged_and_ignored(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    """A number for `text`, no `channel`, a list for `user`: 200 (Slack would retry a 5xx
    three more times), nothing recorded, and the app still serves the next event."""
    delivery, _ = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, "hello")
    good = json.loads(delivery.body)
    for change in ({"text": 12345}, {"channel": None}, {"user": ["U0ALICE"]},
                   {"thread_ts": 17.5}, {"ts": {}}):
        bad = {**good, "event_id": f"Ev{uuid.uuid4().hex[:10]}",
               "event": {**good["event"], **change}}
        for kind in ("app_mention", "message"):
            bad["event"]["type"] = kind
            bad["event_id"] = f"Ev{uuid.uuid4().hex[:10]}"
            response = await local_slack.post(Deliveries.json(bad))
            assert response.status_code == 200, (change, kind, response.text)
    assert await local_slack.executions() == []
    assert (await local_slack.post(delivery)).status_code == 200
    assert len(await local_slack.executions()) == 1


async def test_a_retried_event_runs_once(slack: SlackWeb, workspace: Workspace,
                                         deliveries: Deliveries) -> None:
    delivery, _ = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, "count me once",
                                         event_id="Ev0RETRY1")
    assert (await slack.post(delivery)).status_code == 200
    for attempt in (1, 2, 3):
        response = await slack.post(delivery, retry=attempt)
        assert response.status_code == 200
        assert response.headers.get("x-slack-no-retry") == "1"
    # the same post delivered under a new event id (Slack does that for mention + message)
    again = Deliveries.json({**json.loads(delivery.body), "event_id": "Ev0OTHER"})
    assert (await slack.post(again)).status_code == 200
    assert len(await slack.executions()) == 1
    await slack.drain()
    assert len(slack.double.posts(CHANNEL)) == 1


async def test_a_post_that_is_mention_and_message_is_answered_once(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    mention, ts = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, "both at once")
    message, _ = deliveries.message(workspace, "U0ALICE", CHANNEL,
                                    f"<@{workspace.bot_user_id}> both at once", ts=ts)
    assert (await local_slack.post(message)).status_code == 200
    assert (await local_slack.post(mention)).status_code == 200
    [execution] = await local_slack.executions()
    assert execution.message_id == ts and execution.objective == "both at once"


async def test_ignored_messages(local_slack: SlackWeb, workspace: Workspace,
                                deliveries: Deliveries) -> None:
    ignored = [
        deliveries.message(workspace, "U0ALICE", CHANNEL, "plain channel chatter")[0],
        deliveries.message(workspace, None, CHANNEL, "edited", subtype="message_changed")[0],
        deliveries.message(workspace, None, CHANNEL, "", subtype="message_deleted")[0],
        deliveries.message(workspace, "U0ALICE", CHANNEL, "joined", subtype="channel_join")[0],
        deliveries.message(workspace, None, "D0ALICE", "a bot", channel_type="im",
                           subtype="bot_message", bot_id="B0OTHER")[0],
        deliveries.message(workspace, "U0ROBOT", "D0ALICE", "bot user", channel_type="im",
                           bot_id="B0OTHER")[0],
        # our own answer echoed back as a message event
        deliveries.message(workspace, workspace.bot_user_id, "D0ALICE", "our answer",
                           channel_type="im", bot_id=workspace.bot_id)[0],
    ]
    for delivery in ignored:
        assert (await local_slack.post(delivery)).status_code == 200
    assert await local_slack.executions() == []


# --- objectives --------------------------------------------------------------------------------


async def test_mention_is_answered_in_its_thread_with_controls(
    slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    ts, answer = await ask(slack, workspace, deliveries, "What is the capital of **France**?")
    blocks = answer.params["blocks"]
    assert answer.token == workspace.token
    assert blocks[0]["text"]["text"] == "Answer to: What is the capital of *France*?"
    assert blocks[-2]["type"] == "actions" and blocks[-1]["type"] == "context"
    assert blocks[-1]["elements"][0]["text"].startswith("v1 · ")
    # working state: 👀 on the objective, removed when answered
    added = slack.double.calls_to("reactions.add", ok=True)
    removed = slack.double.calls_to("reactions.remove", ok=True)
    assert [(c.params["timestamp"], c.params["name"]) for c in added] == [(ts, "eyes")]
    assert [(c.params["timestamp"], c.params["name"]) for c in removed] == [(ts, "eyes")]
    assert added[0].at < removed[0].at < answer.at
    [execution] = await slack.executions()
    assert (execution.status, execution.answer_message_id) == ("succeeded",
                                                               answer.response["ts"])
    assert execution.tenant_id == f"slack:{workspace.team_id}"


async def test_direct_messages_and_thread_follow_ups(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    dm, _ = deliveries.message(workspace, "U0ALICE", "D0ALICE", "hi there",
                               channel_type="im")
    assert (await local_slack.post(dm)).status_code == 200
    ts, _ = await ask(local_slack, workspace, deliveries, "first question")
    follow_up, _ = deliveries.message(workspace, "U0ALICE", CHANNEL, "and a follow-up",
                                      thread_ts=ts)
    stranger_thread, _ = deliveries.message(workspace, "U0ALICE", CHANNEL, "not ours",
                                            thread_ts="1.000001")
    for delivery in (follow_up, stranger_thread):
        assert (await local_slack.post(delivery)).status_code == 200
    await local_slack.drain()
    executions = await local_slack.executions()
    assert [(e.objective, e.thread_id) for e in executions] == [
        ("hi there", None), ("first question", ts), ("and a follow-up", ts)]
    dm_answer = local_slack.double.posts("D0ALICE")
    assert dm_answer and "thread_ts" not in dm_answer[0].params
    follow = [c for c in local_slack.double.posts(CHANNEL) if "and a follow-up" in c.params["text"]]
    assert follow and follow[0].params["thread_ts"] == ts


# --- feedback ----------------------------------------------------------------------------------


async def test_reactions_rate_and_retract_privately(
    slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    _, answer = await ask(slack, workspace, deliveries, "Name a prime")
    answer_ts = answer.response["ts"]
    added = deliveries.reaction(workspace, "U0ALICE", "+1::skin-tone-3", CHANNEL, answer_ts)
    assert (await slack.post(added)).status_code == 200
    [feedback] = await slack.feedback()
    assert (feedback.rating, feedback.source, feedback.user_id) == (4, "reaction", "U0ALICE")
    await slack.settle()
    [ack] = slack.double.ephemerals("U0ALICE")
    assert ack.params["channel"] == CHANNEL and "rated 4/5" in ack.params["text"]
    assert ack.params["thread_ts"] == answer.params["thread_ts"]
    assert slack.double.calls_to("chat.postMessage")[-1] is answer  # nothing public

    removed = deliveries.reaction(workspace, "U0ALICE", "+1::skin-tone-3", CHANNEL, answer_ts,
                                  removed=True)
    assert (await slack.post(removed)).status_code == 200
    [feedback] = await slack.feedback()
    assert feedback.retracted
    # reactions we don't map, and reactions on other people's messages, are ignored
    for delivery in (
        deliveries.reaction(workspace, "U0ALICE", "eyes", CHANNEL, answer_ts),
        deliveries.reaction(workspace, "U0ALICE", "-1", CHANNEL, "123.456", item_user="U0BOB"),
        deliveries.reaction(workspace, "U0ALICE", "-1", CHANNEL, "123.456"),  # not an answer
    ):
        assert (await slack.post(delivery)).status_code == 200
    await slack.settle()
    assert len(slack.double.ephemerals()) == 2


async def test_thumbs_down_then_a_thread_reply_is_the_comment(
    slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    ts, answer = await ask(slack, workspace, deliveries, "Capital of Spain?")
    down = deliveries.reaction(workspace, "U0ALICE", "-1", CHANNEL, answer.response["ts"])
    assert (await slack.post(down)).status_code == 200
    await slack.settle()
    assert "Reply in this thread" in slack.double.ephemerals("U0ALICE")[-1].params["text"]
    reply, _ = deliveries.message(workspace, "U0ALICE", CHANNEL, "answer in French please",
                                  thread_ts=ts)
    assert (await slack.post(reply)).status_code == 200
    [feedback] = await slack.feedback()
    assert (feedback.rating, feedback.comment) == (2, "answer in French please")
    assert not feedback.from_admin  # U0ALICE is a member, per users.info
    assert len(await slack.executions()) == 1  # the comment is not a new objective
    await slack.drain()  # the evolution runs and is announced in the channel
    announcements = [c for c in slack.double.posts(CHANNEL) if "thread_ts" not in c.params]
    assert announcements, slack.double.calls
    blocks = announcements[-1].params["blocks"]
    # a member's request in a channel is tried on a canary that always serves them
    assert "canary" in blocks[0]["text"]["text"] and blocks[0]["text"]["text"].endswith("v1 → v2")
    assert any("+1. Answer in French please." in (b.get("text") or {}).get("text", "")
               for b in blocks)
    assert blocks[-1]["elements"][0]["action_id"] == "evobot:cmd:rollback"


async def test_buttons_select_and_comment_modal(
    slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    ts, answer = await ask(slack, workspace, deliveries, "Explain DNS")
    answer_ts = answer.response["ts"]
    [actions] = [b for b in answer.params["blocks"] if b["type"] == "actions"]
    up, _down, select, comment = actions["elements"]

    response = await slack.post(deliveries.block_actions(
        workspace, "U0BOB", CHANNEL, answer_ts, up, thread_ts=ts))
    assert response.status_code == 200
    chosen = {**select, "selected_option": select["options"][2]}  # "3 · okay"
    assert (await slack.post(deliveries.block_actions(
        workspace, "U0ALICE", CHANNEL, answer_ts, chosen, thread_ts=ts))).status_code == 200
    ratings = {f.user_id: (f.rating, f.source) for f in await slack.feedback()}
    assert ratings == {"U0BOB": (4, "button"), "U0ALICE": (3, "button")}

    assert (await slack.post(deliveries.block_actions(
        workspace, "U0ALICE", CHANNEL, answer_ts, comment, thread_ts=ts))).status_code == 200
    await slack.settle()
    [opened] = slack.double.calls_to("views.open", ok=True)
    view = opened.params["view"]
    assert view["callback_id"] == inbound.COMMENT_VIEW
    values = {"comment": {"text": {"type": "plain_text_input", "value": "Mention TTLs."}},
              "rating": {"stars": {"type": "static_select", "selected_option": None}}}
    submitted = await slack.post(deliveries.view_submission(workspace, "U0ALICE", view, values))
    assert submitted.status_code == 200 and submitted.text == ""  # closes the modal
    ratings = {f.user_id: (f.rating, f.comment) for f in await slack.feedback()}
    assert ratings["U0ALICE"] == (3, "Mention TTLs.")
    empty = {"comment": {"text": {"type": "plain_text_input", "value": ""}}}
    refused = await slack.post(deliveries.view_submission(workspace, "U0ALICE", view, empty))
    assert refused.json()["response_action"] == "errors"
    await slack.settle()
    acks = [c.params["text"] for c in slack.double.ephemerals()]
    assert any("rated 4/5" in t for t in acks) and any("comment noted" in t for t in acks)


async def open_comment_modal(sw: SlackWeb, ws: Workspace, deliveries: Deliveries, user: str,
                             ts: str, answer: Any) -> dict[str, Any]:
    """Press 💬 under the answer as `user`; the modal views.open accepted."""
    [actions] = [b for b in answer.params["blocks"] if b["type"] == "actions"]
    comment = actions["elements"][-1]
    assert comment["action_id"] == inbound.ACTION_COMMENT
    opened_before = len(sw.double.calls_to("views.open", ok=True))
    assert (await sw.post(deliveries.block_actions(
        ws, user, CHANNEL, answer.response["ts"], comment, thread_ts=ts))).status_code == 200
    await sw.settle()
    opened = sw.double.calls_to("views.open", ok=True)
    assert len(opened) == opened_before + 1, sw.double.calls_to("views.open")
    view: dict[str, Any] = opened[-1].params["view"]
    return view


def modal_values(category: str | None, comment: str, suggestion: str) -> dict[str, Any]:
    """What Slack puts in view.state.values for the 💬 modal as filled in."""
    chosen = {"value": category} if category else None
    return {
        "category": {"category": {"type": "static_select", "selected_option": chosen}},
        "comment": {"text": {"type": "plain_text_input", "value": comment}},
        "suggestion": {"text": {"type": "plain_text_input", "value": suggestion}},
        "rating": {"stars": {"type": "static_select", "selected_option": None}},
    }


async def test_the_comment_modal_asks_what_kind_of_problem_and_for_a_better_answer(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    ts, answer = await ask(local_slack, workspace, deliveries, "Explain TCP")
    view = await open_comment_modal(local_slack, workspace, deliveries, "U0ALICE", ts, answer)
    inputs = {b["block_id"]: b for b in view["blocks"]}
    select = inputs["category"]["element"]
    assert select["type"] == "static_select" and inputs["category"]["optional"]
    assert [o["text"]["text"] for o in select["options"]] == [
        "Wrong", "Incomplete", "Too long", "Too short", "Format", "Tone", "Language", "Other"]
    assert [o["value"] for o in select["options"]] == [
        "wrong", "incomplete", "too_long", "too_short", "format", "tone", "language", "other"]
    suggestion = inputs["suggestion"]
    assert suggestion["label"]["text"] == "What would a good answer have said?"
    assert suggestion["optional"] and suggestion["element"]["type"] == "plain_text_input"
    assert "comment" in inputs and "rating" in inputs


async def test_a_categorised_comment_is_stored_with_its_suggestion_and_who_gave_it(
    slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    ts, answer = await ask(slack, workspace, deliveries, "Explain DNS")
    for user, category in [("U0ADMIN", "too_long"), ("U0ALICE", "too_long"),
                           ("U0BOB", "not-a-category")]:
        view = await open_comment_modal(slack, workspace, deliveries, user, ts, answer)
        values = modal_values(category, f"{user}: shorter please.", "DNS maps names to IPs.")
        response = await slack.post(deliveries.view_submission(workspace, user, view, values))
        assert response.status_code == 200 and response.text == ""  # the modal closes
    rows = {f.user_id: f for f in await slack.feedback()}
    stored = {user: (f.category, f.comment, f.suggestion, f.from_admin, f.rating)
              for user, f in rows.items()}
    assert stored == {
        "U0ADMIN": ("too_long", "U0ADMIN: shorter please.", "DNS maps names to IPs.", True, None),
        "U0ALICE": ("too_long", "U0ALICE: shorter please.", "DNS maps names to IPs.", False,
                    None),
        # a category we never offered counts as none, and the comment is still taken
        "U0BOB": (None, "U0BOB: shorter please.", "DNS maps names to IPs.", False, None),
    }
    asked = [c.params["user"] for c in slack.double.calls_to("users.info")]
    assert asked == ["U0ADMIN", "U0ALICE", "U0BOB"]
    await slack.settle()
    acks = [c.params["text"] for c in slack.double.ephemerals()]
    assert len(acks) == 3 and all("comment noted" in t for t in acks)


async def test_an_admins_thread_reply_after_a_low_rating_is_from_an_admin(
    slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    ts, answer = await ask(slack, workspace, deliveries, "Capital of Italy?")
    down = deliveries.reaction(workspace, "U0ADMIN", "-1", CHANNEL, answer.response["ts"])
    assert (await slack.post(down)).status_code == 200
    assert slack.double.calls_to("users.info") == []  # a rating alone needs no lookup
    reply, _ = deliveries.message(workspace, "U0ADMIN", CHANNEL, "say Rome, nothing more",
                                  thread_ts=ts)
    assert (await slack.post(reply)).status_code == 200
    [feedback] = await slack.feedback()
    assert (feedback.rating, feedback.comment, feedback.from_admin) == (
        2, "say Rome, nothing more", True)
    assert [c.params["user"] for c in slack.double.calls_to("users.info")] == ["U0ADMIN"]
    await slack.drain()  # an admin's request reaches everyone at once
    announcements = [c for c in slack.double.posts(CHANNEL) if "thread_ts" not in c.params]
    assert announcements, slack.double.calls
    assert announcements[-1].params["blocks"][0]["text"]["text"] == "Agent evolved: v1 → v2"


async def test_a_slow_users_info_does_not_hold_up_a_comment(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    ts, answer = await ask(local_slack, workspace, deliveries, "Explain UDP")
    view = await open_comment_modal(local_slack, workspace, deliveries, "U0ADMIN", ts, answer)
    local_slack.double.rate_limit("users.info", retry_after=1)  # > the 0.2 s budget below
    local_slack.bot.settings.admin_lookup_budget_s = 0.2
    started = time.monotonic()
    response = await local_slack.post(deliveries.view_submission(
        workspace, "U0ADMIN", view, modal_values("tone", "Less formal.", "")))
    assert time.monotonic() - started < 1.0 and response.status_code == 200
    [feedback] = await local_slack.feedback()
    assert (feedback.category, feedback.comment, feedback.suggestion, feedback.from_admin) == (
        "tone", "Less formal.", None, False)
    await local_slack.settle()  # the lookup finished in the background after Slack's retry
    assert [c.status for c in local_slack.double.calls_to("users.info")] == [429, 200]


# --- commands ------------------------------------------------------------------------------------


async def test_slash_commands_answer_ephemerally_in_the_ack(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    url = local_slack.double.response_url()
    for text, expected in [("", "evobot commands"), ("status", "evobot status"),
                           ("history", "Version history"), ("tools", "Tools"),
                           ("diff", "Prompt diff v1 → v1"), ("nonsense", "Sorry")]:
        response = await local_slack.post(
            deliveries.slash_command(workspace, "U0ALICE", CHANNEL, text, response_url=url))
        assert response.status_code == 200
        body = response.json()
        assert body["response_type"] == "ephemeral"
        assert body["blocks"][0]["text"]["text"].startswith(expected), body


async def test_admin_commands_check_users_info(
    slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    url = slack.double.response_url()
    refused = await slack.post(
        deliveries.slash_command(workspace, "U0ALICE", CHANNEL, "pause", response_url=url))
    assert refused.json()["blocks"][1]["text"]["text"].startswith("Only workspace or chat admins")
    allowed = await slack.post(
        deliveries.slash_command(workspace, "U0ADMIN", CHANNEL, "pause", response_url=url))
    assert allowed.json()["blocks"][0]["text"]["text"] == "Evolution paused"
    looked_up = [c.params["user"] for c in slack.double.calls_to("users.info")]
    assert looked_up == ["U0ALICE", "U0ADMIN"]
    # cached: no second users.info for the same user within a minute
    await slack.post(deliveries.slash_command(workspace, "U0ADMIN", CHANNEL, "resume",
                                              response_url=url))
    assert len(slack.double.calls_to("users.info")) == 2


async def slash(sw: SlackWeb, ws: Workspace, deliveries: Deliveries, user: str,
                text: str) -> dict[str, Any]:
    """`/evobot <text>` by `user`; the body of the ack (the reply, within the budget)."""
    response = await sw.post(deliveries.slash_command(ws, user, CHANNEL, text,
                                                      response_url=sw.double.response_url()))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def block_texts(body: dict[str, Any]) -> list[str]:
    return [(b.get("text") or {}).get("text", "") for b in body.get("blocks", [])]


async def test_help_lists_every_listed_command(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    body = await slash(local_slack, workspace, deliveries, "U0ALICE", "help")
    lines = "\n".join(block_texts(body)).split("\n")
    for command in listed():
        assert any(line.startswith(outbound.escape(command.usage) + " — ") for line in lines), (
            command.name, lines)
    unlisted = [c.name for c in COMMANDS if not c.listed]
    assert not [line for line in lines if line.split(" ", 1)[0] in unlisted]


async def test_a_workspace_admin_sets_the_domain(
    slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    assert "U0ADMIN" not in slack.config.admins  # an admin by users.info, not EVOBOT_ADMINS
    body = await slash(slack, workspace, deliveries, "U0ADMIN", "domain legal")
    assert block_texts(body)[0] == "Domain set to legal"
    assert [c.params["user"] for c in slack.double.calls_to("users.info")] == ["U0ADMIN"]
    body = await slash(slack, workspace, deliveries, "U0ALICE", "domain")
    assert block_texts(body)[0] == "Domain: legal"
    # reading it needs no admin rights, so Slack was not asked about U0ALICE
    assert [c.params["user"] for c in slack.double.calls_to("users.info")] == ["U0ADMIN"]


async def test_a_member_cannot_set_the_domain(
    slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    before = block_texts(await slash(slack, workspace, deliveries, "U0ALICE", "domain"))[0]
    body = await slash(slack, workspace, deliveries, "U0ALICE", "domain legal")
    assert block_texts(body)[0] == "Sorry"
    assert block_texts(body)[1].startswith("Only workspace or chat admins")
    assert [c.params["user"] for c in slack.double.calls_to("users.info")] == ["U0ALICE"]
    after = block_texts(await slash(slack, workspace, deliveries, "U0ALICE", "domain"))[0]
    assert after == before and after != "Domain: legal"


async def test_evobot_admins_allowlist(stack: Any, double: Any, workspace: Workspace,
                                       deliveries: Deliveries) -> None:
    from tests.adapters.slack.conftest import slack_config, start_web, stop_web

    config = slack_config(stack, double, token=workspace.token, EVOBOT_ADMINS="U0ALICE")
    sw = await start_web(stack, double, config)
    try:
        response = await sw.post(deliveries.slash_command(
            workspace, "U0ALICE", CHANNEL, "privacy federated",
            response_url=double.response_url()))
        assert response.json()["blocks"][0]["text"]["text"] == "Privacy set to federated"
        assert double.calls_to("users.info") == []
    finally:
        await stop_web(sw)


async def test_slow_commands_finish_through_response_url(
    local_slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    local_slack.double.rate_limit("users.info", retry_after=1)  # > the 0.2 s budget below
    local_slack.bot.settings.command_budget_s = 0.2
    url = local_slack.double.response_url()
    started = time.monotonic()
    response = await local_slack.post(
        deliveries.slash_command(workspace, "U0ADMIN", CHANNEL, "pause", response_url=url))
    assert time.monotonic() - started < 1.0
    assert response.json() == {"text": "Working on `pause`…", "response_type": "ephemeral"}
    [late] = await local_slack.double.wait_for(lambda: local_slack.double.responses,
                                               what="response_url")
    assert late["blocks"][0]["text"]["text"] == "Evolution paused"
    assert late["replace_original"] is True


async def test_rollback_button_is_for_admins(
    slack: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    button = {"type": "button", "action_id": "evobot:cmd:rollback", "value": "1"}
    for user in ("U0ALICE", "U0ADMIN"):
        response = await slack.post(deliveries.block_actions(workspace, user, CHANNEL,
                                                             "5.5", button))
        assert response.status_code == 200
    await slack.settle()
    texts = {c.params["user"]: c.params["blocks"][0]["text"]["text"]
             for c in slack.double.ephemerals()}
    assert texts["U0ALICE"] == "Sorry"
    assert texts["U0ADMIN"] == "v1 is already active."
