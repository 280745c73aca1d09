"""A file shared with a message reaches the agent's code; the files the code makes come
back with the answer, are stored with the execution, exported and forgotten with the
tenant."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.files.store import tenant_dir
from engine.llm import scripted
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script
from engine.privacy import delete_tenant_data, export_tenant_data
from engine.storage.files import tenant_files
from engine.types import AnswerReady, Attachment, InboundMessage, Notice
from tests.conftest import Bot, Stack, _bot
from tests.engine.files.helpers import ANALYST, rates_close, sales_csv, text_pdf

TENANT = "local:retail"
async def ask(bot: Bot, text: str, message_id: str, files: list[Attachment]) -> None:
    await bot.service.handle_message(InboundMessage(
        tenant_id=TENANT, channel_id="c1", user_id="u1", text=text, message_id=message_id,
        thread_id="t1", attachments=files))
    await bot.drain()


@pytest.fixture
async def bot(stack: Stack) -> AsyncIterator[Bot]:
    """The usual bot, with room for pandas and matplotlib on a busy machine."""
    config = stack.config.model_copy(update={"tool_timeout_s": 60.0,
                                             "llm_model": ANALYST})
    async with _bot(Stack(stack.name, config, stack.redis)) as bot:
        yield bot


async def test_a_csv_in_a_chart_and_a_summary_out(bot: Bot) -> None:
    data = sales_csv(rows=300)
    await ask(bot, "Calculate accessory attach rates by device", "m1",
              [Attachment(name="../../sales.csv", data=data)])

    (answer,) = bot.events("answer")
    assert isinstance(answer, AnswerReady)
    assert answer.tool_count == 1 and " · 1 tool · " in answer.footer  # python, called once
    request = next(r for r in scripted.CALLS if r.purpose == "execute")
    assert "- sales.csv — CSV" in request.last_user  # the model is told what it has
    assert "order_id,date,device,accessory,revenue" in request.last_user
    reported = json.loads(answer.text.removeprefix("Attach rates: "))["value"]
    assert rates_close(reported, data)  # the numbers the model was given are right
    made = {f.name: f for f in answer.files}
    assert sorted(made) == ["attach_rates.csv", "attach_rates.png"]
    assert made["attach_rates.png"].data.startswith(b"\x89PNG")
    summary = list(csv.DictReader(io.StringIO(made["attach_rates.csv"].data.decode())))
    assert rates_close({r["device"]: float(r["attach_rate"]) for r in summary}, data)
    assert summary[0]["note"].startswith("'=HYPERLINK")  # no formula in what we post

    root = bot.rt.settings.files_dir
    async with bot.rt.repo(TENANT) as repo:
        stored = await tenant_files(repo)
    assert [(f.direction, f.name) for f in stored] == [
        ("in", "sales.csv"), ("out", "attach_rates.csv"), ("out", "attach_rates.png")]
    on_disk = sorted(p for p in root.rglob("*") if p.is_file())
    assert on_disk == sorted(tenant_dir(root, TENANT) / f.storage_key for f in stored)
    assert (tenant_dir(root, TENANT) / stored[0].storage_key).read_bytes() == data


async def test_a_follow_up_in_the_thread_still_has_the_file(bot: Bot) -> None:
    await ask(bot, "Attach rates please", "m1", [Attachment(name="sales.csv",
                                                           data=sales_csv())])
    await ask(bot, "Good but need visualizations", "m2", [])
    _, second = bot.events("answer")
    assert isinstance(second, AnswerReady)
    assert "attach_rates.png" in {f.name for f in second.files}


async def test_refused_files_are_explained_and_nothing_runs(bot: Bot) -> None:
    bomb = b"PK\x03\x04" + b"\0" * 100
    accepted = await bot.service.handle_message(InboundMessage(
        tenant_id=TENANT, channel_id="c1", user_id="u1", text="Analyze this", message_id="m1",
        attachments=[Attachment(name="sales.xlsx", data=bomb)]))
    assert accepted is None
    (notice,) = bot.events("notice")
    assert isinstance(notice, Notice)
    assert "sales.xlsx: a damaged Excel workbook" in notice.document.summary
    assert "Nothing was run" in notice.document.summary
    assert not list(bot.rt.settings.files_dir.rglob("*.*"))


async def test_export_carries_the_files_and_forget_deletes_them(bot: Bot, tmp_path: Path
                                                                ) -> None:
    data = sales_csv(rows=20)
    await bot.service.handle_message(InboundMessage(
        tenant_id=TENANT, channel_id="c1", user_id="u1", text="keep this", message_id="m1",
        attachments=[Attachment(name="sales.csv", data=data)]))
    other = tenant_dir(bot.rt.settings.files_dir, "local:other")
    other.mkdir(parents=True)
    (other / "keep.csv").write_bytes(b"not yours")

    exported = await export_tenant_data(bot.rt, TENANT)
    (file,) = exported["files"]
    assert file["name"] == "sales.csv" and base64.b64decode(file["content_base64"]) == data
    assert exported["tables"]["files"][0]["sha256"] == file["sha256"]

    counts = await delete_tenant_data(bot.rt, TENANT)
    assert counts["stored_files"] == 1 and counts["files"] == 1
    assert not tenant_dir(bot.rt.settings.files_dir, TENANT).exists()
    assert (other / "keep.csv").read_bytes() == b"not yours"  # another tenant's: untouched


def pdf_reader(request: ScriptedRequest) -> ScriptedReply:
    if not request.tool_results:
        code = "result = open('report.pdf.txt').read().upper()"
        return ScriptedReply(tool_calls=[("python", {"code": code})])
    return ScriptedReply(content=request.tool_results[-1])


register_script("pdf-reader", pdf_reader)


@pytest.fixture
async def pdf_bot(embedded: Stack) -> AsyncIterator[Bot]:
    config = embedded.config.model_copy(update={"llm_model": "scripted/pdf-reader"})
    async with _bot(Stack(embedded.name, config, embedded.redis)) as bot:
        yield bot


async def test_a_pdf_s_text_is_there_to_read(pdf_bot: Bot) -> None:
    await pdf_bot.service.handle_message(InboundMessage(
        tenant_id=TENANT, channel_id="c1", user_id="u1", text="what does it say?",
        message_id="m1", attachments=[
            Attachment(name="report.pdf", data=text_pdf("Q3 revenue grew 12 percent")),
            Attachment(name="scan.pdf", data=b"%PDF-1.4\n% only an image here\n")]))
    await pdf_bot.drain()
    request = next(r for r in scripted.CALLS if r.purpose == "execute")
    assert "its text is in report.pdf.txt" in request.last_user
    assert "scan.pdf — PDF" in request.last_user and "no text could be read" in request.last_user
    (answer,) = pdf_bot.events("answer")
    assert isinstance(answer, AnswerReady) and "Q3 REVENUE GREW 12 PERCENT" in answer.text
