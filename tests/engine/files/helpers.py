"""Files for tests: real workbooks, charts and the hostile ones."""

from __future__ import annotations

import csv
import io
import random
import struct
import zipfile
import zlib

import pytest

from engine.llm.default_script import default
from engine.llm.scripted import ScriptedReply, ScriptedRequest, register_script


def sales_csv(rows: int = 200, seed: int = 7) -> bytes:
    """Device sales with accessories: `order_id,date,device,accessory,revenue`."""
    rng = random.Random(seed)
    devices = ["phone", "tablet", "laptop"]
    lines = ["order_id,date,device,accessory,revenue"]
    for order in range(1, rows + 1):
        device = devices[order % 3]
        accessory = "case" if rng.random() < {"phone": 0.6, "tablet": 0.3,
                                              "laptop": 0.1}[device] else ""
        lines.append(f"{order},2026-0{1 + order % 3}-1{order % 9},{device},{accessory},"
                     f"{rng.randint(100, 900)}")
    return ("\n".join(lines) + "\n").encode()


def workbook(rows: list[list[object]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Q3"
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zip_bomb_xlsx(unpacked_mb: int = 60) -> bytes:
    """Looks like a workbook; one member inflates to `unpacked_mb` of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (unpacked_mb * 1024 * 1024))
    return out.getvalue()


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid PNG of grey pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


ATTACH_RATES = """
import pandas as pd
import matplotlib.pyplot as plt
sales = pd.read_csv("sales.csv")
rates = sales.assign(attached=sales.accessory.notna()).groupby("device").attached.mean()
table = rates.round(3).rename("attach_rate").reset_index()
table["note"] = ["=HYPERLINK(\\"http://evil\\")", "", ""]
table.to_csv("out/attach_rates.csv", index=False)
ax = rates.plot.bar(title="Accessory attach rate by device")
ax.figure.savefig("out/attach_rates.png")
result = {device: round(rate, 3) for device, rate in rates.items()}
"""


def analyst(request: ScriptedRequest) -> ScriptedReply:
    """Runs the analysis once, then reports what the tool returned."""
    if not request.tool_results:
        return ScriptedReply(tool_calls=[("python", {"code": ATTACH_RATES})])
    return ScriptedReply(content=f"Attach rates: {request.tool_results[-1]}")


register_script("analyst", analyst)
ANALYST = "scripted/analyst"


def expected_rates(data: bytes) -> dict[str, float]:
    """Each device's share of orders with an accessory, computed here without pandas."""
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    devices = sorted({r["device"] for r in rows})
    return {d: sum(1 for r in rows if r["device"] == d and r["accessory"])
            / sum(1 for r in rows if r["device"] == d) for d in devices}


def rates_close(found: dict[str, float], data: bytes) -> bool:
    """The rates match (to the three decimals the analysis rounds to)."""
    return found == pytest.approx(expected_rates(data), abs=6e-4)


RATES_TABLE = """
import pandas as pd
sales = pd.read_csv("sales.csv")
rates = sales.assign(attached=sales.accessory.notna()).groupby("device").attached.mean()
rates.round(3).rename("attach_rate").to_csv("out/attach_rates.csv")
result = {device: round(rate, 3) for device, rate in rates.items()}
"""
RATES_CHART = RATES_TABLE + """
import matplotlib.pyplot as plt
ax = rates.plot.bar(title="Accessory attach rate by device", ylabel="attach rate")
ax.figure.savefig("out/attach_rates.png")
"""


def retail_analyst(request: ScriptedRequest) -> ScriptedReply | str:
    """The seed's retail team's agent: a table of attach rates, and a chart too once a rule
    of its prompt asks for visualizations; everything else as the default script."""
    if request.purpose != "execute" or not request.tools:
        return default(request)
    if request.tool_results:
        return ScriptedReply(content=f"Attach rates: {request.tool_results[-1]}")
    chart = "visualization" in request.system.lower()
    return ScriptedReply(tool_calls=[("python", {"code": RATES_CHART if chart else RATES_TABLE})])


register_script("retail", retail_analyst)
RETAIL = "scripted/retail"


def text_pdf(line: str) -> bytes:
    """A one-page PDF whose text layer says `line` (built by hand: offsets and all)."""
    stream = f"BT /F1 12 Tf 72 712 Td ({line}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)
