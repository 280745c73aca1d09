"""Files shared with the bot in Slack: downloaded with the bot token (capped while
downloading), analysed by the agent's code, and the files it makes uploaded into the thread
with files_upload_v2 — against the real web app and worker, with the Slack double."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest

from adapters.slack import files, inbound
from adapters.slack.notifier import SlackNotifier
from adapters.slack.state import SlackState
from adapters.slack.tokens import StaticToken
from doubles.slack import Call, Deliveries, SlackDouble, Workspace
from engine.types import FileShared, SandboxFile
from tests.adapters.slack.conftest import SlackWeb, slack_config, start_web, stop_web
from tests.conftest import Stack
from tests.engine.files.helpers import ANALYST, RETAIL, rates_close, sales_csv, zip_bomb_xlsx

CHANNEL = "C0SALES"
OBJECTIVE = "Calculate accessory attach rates by device"


async def files_web(stack: Stack, double: SlackDouble, workspace: Workspace) -> SlackWeb:
    config = slack_config(stack, double, token=workspace.token, LLM_MODEL=ANALYST,
                          EVOBOT_TOOL_TIMEOUT_S=60)
    return await start_web(stack, double, config)


@pytest.fixture
async def sw(stack: Stack, double: SlackDouble, workspace: Workspace
             ) -> AsyncIterator[SlackWeb]:
    web = await files_web(stack, double, workspace)
    try:
        yield web
    finally:
        await stop_web(web)


@pytest.fixture
async def local_sw(embedded: Stack, double: SlackDouble, workspace: Workspace
                   ) -> AsyncIterator[SlackWeb]:
    web = await files_web(embedded, double, workspace)
    try:
        yield web
    finally:
        await stop_web(web)


def full_text(call: Call) -> str:
    """A post's text as shown: its sections (the fallback `text` is shortened)."""
    sections = [b["text"]["text"] for b in call.params.get("blocks") or [] if "text" in b]
    return "\n".join(sections) or str(call.params["text"])


async def mention_with_files(sw: SlackWeb, ws: Workspace, deliveries: Deliveries,
                             files: list[dict[str, object]], text: str = OBJECTIVE) -> str:
    delivery, ts = deliveries.app_mention(ws, "U0ALICE", CHANNEL, text, files=files)
    assert (await sw.post(delivery)).status_code == 200
    await sw.settle()  # the download runs after the ack
    await sw.drain()
    return ts


async def test_a_csv_in_a_mention_comes_back_as_a_chart_and_a_summary(
    sw: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    data = sales_csv(rows=300)
    shared = sw.double.host_file(workspace, "sales.csv", data, mimetype="text/csv")
    ts = await mention_with_files(sw, workspace, deliveries, [shared])

    (download,) = sw.double.calls_to("files.download")
    assert download.token == workspace.token
    answer = [c for c in sw.double.posts(CHANNEL) if c.params.get("thread_ts") == ts]
    assert answer and "Attach rates" in answer[-1].params["text"]
    uploads = {u.filename: u for u in sw.double.uploads(CHANNEL)}
    assert sorted(uploads) == ["attach_rates.csv", "attach_rates.png"]
    assert {u.thread_ts for u in uploads.values()} == {ts}  # in the answer's thread
    assert uploads["attach_rates.png"].data.startswith(b"\x89PNG")
    rows = list(csv.DictReader(io.StringIO(uploads["attach_rates.csv"].data.decode())))
    assert rates_close({r["device"]: float(r["attach_rate"]) for r in rows}, data)
    assert rows[0]["note"].startswith("'=")  # a formula cell is posted as text
    # all of them in one external upload: one URL per file, one completion
    assert len(sw.double.calls_to("files.getUploadURLExternal", ok=True)) == 2
    assert len(sw.double.calls_to("files.completeUploadExternal", ok=True)) == 1


async def test_a_file_alone_in_a_dm_is_looked_at(
    local_sw: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    shared = local_sw.double.host_file(workspace, "sales.csv", sales_csv(), mimetype="text/csv")
    delivery, _ = deliveries.message(workspace, "U0ALICE", "D0ALICE", "", channel_type="im",
                                     subtype="file_share", files=[shared])
    assert (await local_sw.post(delivery)).status_code == 200
    await local_sw.settle()
    await local_sw.drain()
    (execution,) = await local_sw.executions()
    assert "attached file" in execution.objective
    assert {u.filename for u in local_sw.double.uploads("D0ALICE")} == {
        "attach_rates.csv", "attach_rates.png"}


async def test_a_stream_larger_than_it_claims_is_cut_off_while_downloading(
    local_sw: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    liar = local_sw.double.host_file(workspace, "q3.csv", declared_size=1000,
                                     stream_bytes=2 * 1024**3)  # 2 GB, claimed 1 KB
    await mention_with_files(local_sw, workspace, deliveries, [liar])
    assert await local_sw.executions() == []
    (notice,) = local_sw.double.posts(CHANNEL)
    assert "q3.csv: larger than 20 MB (download stopped)" in full_text(notice)
    assert "Nothing was run" in full_text(notice)
    assert not list(local_sw.config.data_dir.glob("files/**/*.csv"))


async def test_hostile_files_are_refused_and_explained(
    local_sw: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    double = local_sw.double
    declared_huge = double.host_file(workspace, "2gb.csv", b"", declared_size=2 * 1024**3)
    bomb = double.host_file(workspace, "../../../etc/sales.xlsx", zip_bomb_xlsx())
    foreign = double.host_file(workspace, "elsewhere.csv", b"a,b\n")
    foreign["url_private_download"] = "http://attacker.example/steal.csv"
    good = double.host_file(workspace, "sales.csv", sales_csv(), mimetype="text/csv")
    await mention_with_files(local_sw, workspace, deliveries,
                             [declared_huge, bomb, foreign, good])

    text = full_text(double.posts(CHANNEL)[0])
    assert "2gb.csv: larger than 20 MB" in text
    assert "sales.xlsx: compressed suspiciously well (a zip bomb?)" in text
    assert "elsewhere.csv: not a file stored in Slack" in text
    assert "answering with the rest" in text
    # only the two Slack-hosted files that could fit were downloaded (the token never left)
    assert len(double.calls_to("files.download")) == 2
    (execution,) = await local_sw.executions()
    assert execution.status == "succeeded"
    stored = sorted(p.name for p in local_sw.config.data_dir.glob("files/*/*"))
    assert len(stored) == 3 and all(len(n.split(".")[0]) == 32 for n in stored)  # 1 in, 2 out


async def test_a_refused_upload_leaves_the_answer_and_says_why(
    local_sw: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    local_sw.double.fail("files.getUploadURLExternal", "missing_scope")
    shared = local_sw.double.host_file(workspace, "sales.csv", sales_csv(), mimetype="text/csv")
    ts = await mention_with_files(local_sw, workspace, deliveries, [shared])
    thread = [full_text(c) for c in local_sw.double.posts(CHANNEL)
              if c.params.get("thread_ts") == ts]
    assert any("Attach rates" in t for t in thread)
    assert any("files:write" in t for t in thread)
    (execution,) = await local_sw.executions()
    assert execution.answer_message_id is not None  # ratings still find the answer


async def test_a_shared_file_is_uploaded_with_its_caption(
    embedded: Stack, double: SlackDouble, workspace: Workspace
) -> None:
    state = SlackState(embedded.redis.asyncio_client())
    notifier = SlackNotifier(tokens=StaticToken(workspace.token), api_url=double.api_url,
                             state=state, pace_s=0)
    report = SandboxFile(name="agent.json", media_type="application/json", data=b"{}")
    try:
        await notifier.deliver(FileShared(tenant_id="slack:T0ACME", channel_id=CHANNEL,
                                          thread_id=None, file=report,
                                          caption="The agent, exported"))
        nowhere = await notifier.deliver(FileShared(tenant_id="slack:T0ACME", channel_id=None,
                                                    thread_id=None, file=report))
    finally:
        await state.redis.aclose()
    (uploaded,) = double.uploads(CHANNEL)
    assert (uploaded.filename, uploaded.data) == ("agent.json", b"{}")
    assert uploaded.initial_comment == "The agent, exported" and uploaded.thread_ts is None
    assert nowhere.ref is None


def test_which_messages_count_as_sharing_files() -> None:
    shared = {"type": "message", "subtype": "file_share", "user": "U1", "ts": "1.1",
              "channel": "D1", "channel_type": "im", "text": "", "files": [{"id": "F1"}]}
    assert inbound.is_unmentioned_message(shared, "UBOT")
    assert not inbound.is_unmentioned_message({**shared, "files": []}, "UBOT")
    assert files.shared_files({**shared, "files": "not a list"}) == []
    assert files.shared_files({**shared, "files": [{"id": "F1"}, 7]}) == [{"id": "F1"}]


async def test_a_file_the_token_cannot_read_says_which_scope_is_missing(
    local_sw: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    elsewhere = local_sw.double.add_workspace("T0OTHER")
    foreign = local_sw.double.host_file(elsewhere, "theirs.csv", b"a,b\n1,2\n")
    await mention_with_files(local_sw, workspace, deliveries, [foreign])
    (notice,) = local_sw.double.posts(CHANNEL)
    assert "theirs.csv: Slack refused the download (does the app have the files:read " \
           "scope?)" in full_text(notice)
    assert await local_sw.executions() == []


@pytest.fixture
async def retail_sw(embedded: Stack, double: SlackDouble, workspace: Workspace
                    ) -> AsyncIterator[SlackWeb]:
    config = slack_config(embedded, double, token=workspace.token, LLM_MODEL=RETAIL,
                          EVOBOT_TOOL_TIMEOUT_S=60)
    web = await start_web(embedded, double, config)
    try:
        yield web
    finally:
        await stop_web(web)


async def test_the_seed_flow_in_a_slack_thread(
    retail_sw: SlackWeb, workspace: Workspace, deliveries: Deliveries
) -> None:
    """Numbers first; 👎 and "Good but need visualizations" in the thread; the next answer
    in the thread comes with a chart (the asker is served the canary they asked for)."""
    sw, double = retail_sw, retail_sw.double
    data = sales_csv(rows=300, seed=5)
    shared = double.host_file(workspace, "sales.csv", data, mimetype="text/csv")
    ts = await mention_with_files(sw, workspace, deliveries, [shared])
    assert [u.filename for u in double.uploads(CHANNEL)] == ["attach_rates.csv"]
    (answer,) = [c for c in double.posts(CHANNEL) if c.params.get("thread_ts") == ts]

    down = deliveries.reaction(workspace, "U0ALICE", "-1", CHANNEL, answer.response["ts"])
    assert (await sw.post(down)).status_code == 200
    await sw.settle()
    reply, _ = deliveries.message(workspace, "U0ALICE", CHANNEL, "Good but need visualizations",
                                  thread_ts=ts)
    assert (await sw.post(reply)).status_code == 200
    await sw.drain()  # the evolution
    announced = [full_text(c) for c in double.posts(CHANNEL) if "thread_ts" not in c.params]
    assert any("visualizations" in text for text in announced)

    again, _ = deliveries.app_mention(workspace, "U0ALICE", CHANNEL, OBJECTIVE, thread_ts=ts)
    assert (await sw.post(again)).status_code == 200
    await sw.drain()
    names = [u.filename for u in double.uploads(CHANNEL)]
    assert names[1:] == ["attach_rates.csv", "attach_rates.png"]  # the second answer's
    chart = double.uploads(CHANNEL)[-1]
    assert chart.thread_ts == ts and chart.data.startswith(b"\x89PNG")
