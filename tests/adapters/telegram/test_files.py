"""Documents and photos sent to the bot in Telegram: fetched with getFile (capped while
downloading), analysed by the agent's code; a chart comes back as a photo and a table as a
document, replying to the answer — through the real webhook and worker, with the Bot API
double."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest

from adapters.telegram.client import TelegramSettings, make_bot
from adapters.telegram.notifier import TelegramNotifier
from doubles import telegram as u
from doubles.telegram import BOT_USERNAME, BotApiDouble
from engine.types import FileShared, SandboxFile
from tests.adapters.telegram.conftest import Harness, make_harness
from tests.conftest import Stack
from tests.engine.files.helpers import ANALYST, png, rates_close, sales_csv

ALICE = u.user(701, "Alice")
PRIVATE = u.private(701)
GROUP = u.group(-100777)
OBJECTIVE = "Calculate accessory attach rates by device"


@pytest.fixture
async def h(embedded: Stack, settings: TelegramSettings, double: BotApiDouble
            ) -> AsyncIterator[Harness]:
    config = embedded.config.model_copy(update={"llm_model": ANALYST, "tool_timeout_s": 60.0})
    harness = await make_harness(Stack(embedded.name, config, embedded.redis), settings, double)
    try:
        yield harness
    finally:
        await harness.aclose()


def texts(double: BotApiDouble, chat_id: int) -> list[str]:
    return [m["text"] for m in double.sent(chat_id) if "text" in m]


async def test_a_csv_document_comes_back_as_a_chart_photo_and_a_csv_document(
    h: Harness, double: BotApiDouble
) -> None:
    data = sales_csv(rows=240)
    sales = double.host_file("sales.csv", data)
    update = u.document_update(PRIVATE, ALICE, sales, OBJECTIVE)
    assert (await h.post(update)).status_code == 200
    (execution,) = await h.executions()
    assert execution.objective == OBJECTIVE  # the caption
    await h.drain()

    (answer,) = [m for m in double.sent(701) if "text" in m]
    assert "Attach rates" in answer["text"]
    sent = {m["kind"]: m for m in double.sent_files(701)}
    photo, document = sent["photo"], sent["document"]
    assert len(sent) == 2 and photo["file"].data.startswith(b"\x89PNG")
    assert document["file"].name == "attach_rates.csv"
    for message in (photo, document):  # under the answer
        assert message["reply_parameters"]["message_id"] == answer["message_id"]
    rows = list(csv.DictReader(io.StringIO(document["file"].data.decode())))
    assert rates_close({r["device"]: float(r["attach_rate"]) for r in rows}, data)
    assert len(double.of("getFile")) == 1


async def test_in_a_group_a_file_needs_the_bot_mentioned_in_its_caption(
    h: Harness, double: BotApiDouble
) -> None:
    sales = double.host_file("sales.csv", sales_csv())
    await h.post(u.document_update(GROUP, ALICE, sales, "for the team"))
    assert await h.executions() == [] and double.of("getFile") == []
    await h.post(u.document_update(GROUP, ALICE, sales, f"@{BOT_USERNAME} {OBJECTIVE}"))
    (execution,) = await h.executions()
    assert execution.objective == OBJECTIVE


async def test_a_photo_without_a_caption_is_looked_at(h: Harness, double: BotApiDouble
                                                      ) -> None:
    photo = double.host_file("ignored", b"\xff\xd8\xff\xe0" + bytes(200))
    await h.post(u.document_update(PRIVATE, ALICE, photo, photo=True))
    (execution,) = await h.executions()
    assert "attached file" in execution.objective
    assert double.of("getFile")[0]["file_id"] == photo.file_id  # the largest size


async def test_oversized_files_are_refused_and_explained(h: Harness, double: BotApiDouble
                                                         ) -> None:
    declared = double.host_file("big.csv", size=25 * 1024 * 1024)
    liar = double.host_file("liar.csv", size=900, stream_bytes=2 * 1024**3)  # "900 bytes"
    for file in (declared, liar):
        assert (await h.post(u.document_update(PRIVATE, ALICE, file, OBJECTIVE))
                ).status_code == 200
    assert await h.executions() == []
    said = "\n".join(texts(double, 701))
    assert "big.csv: larger than 20 MB" in said
    assert "liar.csv: larger than 20 MB (download stopped)" in said
    assert said.count("Nothing was run") == 2
    assert len(double.of("getFile")) == 1  # the declared 25 MB was not even asked for


async def test_a_shared_file_is_sent_as_a_document_with_its_caption(
    settings: TelegramSettings, double: BotApiDouble
) -> None:
    notifier = TelegramNotifier(make_bot(settings))
    chart = SandboxFile(name="chart.png", media_type="image/png", data=png())
    table = SandboxFile(name="agent.json", media_type="application/json", data=b"{}")
    try:
        for file in (chart, table):
            delivery = await notifier.deliver(FileShared(
                tenant_id="telegram:701", channel_id="701", thread_id=None, file=file,
                caption="The agent, exported"))
            assert delivery.ref is not None
    finally:
        await notifier.aclose()
    photo, document = double.sent_files(701)
    assert (photo["kind"], document["kind"]) == ("photo", "document")
    assert document["file"].name == "agent.json" and document["file"].data == b"{}"
    assert document["caption"] == "The agent, exported"
