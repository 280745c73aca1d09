"""DedupedApp: one run per Events API delivery, over HTTP and Socket Mode alike; a failed
run lets Slack's retry through."""

from __future__ import annotations

from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest

from adapters.common.dedup import MemoryDedup
from adapters.slack.app import DedupedApp
from doubles.slack import Deliveries, Delivery, Workspace

WS = Workspace(team_id="T0ACME", token="xoxb-test", bot_user_id="UBOT", bot_id="BBOT",
               name="Acme")


async def authorize(**_: Any) -> AuthorizeResult:
    return AuthorizeResult(enterprise_id=None, team_id=WS.team_id, bot_token=WS.token,
                           bot_user_id=WS.bot_user_id, bot_id=WS.bot_id)


def flaky_app(failures: int) -> tuple[DedupedApp, list[str]]:
    """An app whose app_mention listener fails `failures` times, then succeeds."""
    app = DedupedApp(dedup=MemoryDedup(), signing_secret="unused", authorize=authorize,
                     process_before_response=True, request_verification_enabled=False)
    runs: list[str] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        runs.append(event["ts"])
        if len(runs) <= failures:
            raise RuntimeError("database unavailable")

    return app, runs


def request(delivery: Delivery) -> AsyncBoltRequest:
    return AsyncBoltRequest(body=delivery.body.decode(), mode="socket_mode",
                            headers={"content-type": [delivery.content_type]})


async def test_a_redelivered_event_runs_once() -> None:
    app, runs = flaky_app(failures=0)
    delivery, ts = Deliveries().app_mention(WS, "U0ALICE", "C1", "hi", event_id="Ev1")
    assert (await app.async_dispatch(request(delivery))).status == 200
    again = await app.async_dispatch(request(delivery))
    assert again.status == 200 and again.headers["x-slack-no-retry"] == ["1"]
    assert runs == [ts]


async def test_a_failed_run_lets_the_retry_through() -> None:
    app, runs = flaky_app(failures=1)
    delivery, ts = Deliveries().app_mention(WS, "U0ALICE", "C1", "hi", event_id="Ev2")
    assert (await app.async_dispatch(request(delivery))).status == 500
    assert (await app.async_dispatch(request(delivery))).status == 200
    assert (await app.async_dispatch(request(delivery))).headers.get("x-slack-no-retry")
    assert runs == [ts, ts]


async def test_other_payloads_are_not_deduplicated() -> None:
    app, _ = flaky_app(failures=0)
    command = Deliveries().slash_command(WS, "U0ALICE", "C1", "help", response_url="http://x")
    for _ in range(2):
        response = await app.async_dispatch(request(command))
        assert "x-slack-no-retry" not in response.headers
