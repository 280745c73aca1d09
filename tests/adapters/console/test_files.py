"""`/attach PATH` in the console: the file goes with the next objective; what the answer
brings is saved under DATA_DIR/outbox and its path printed."""

from __future__ import annotations

from pathlib import Path

from adapters.console.app import HINT
from tests.adapters.console.chat import console_chat, lines
from tests.conftest import Stack
from tests.engine.files.helpers import ANALYST, rates_close, sales_csv, zip_bomb_xlsx


async def test_attach_then_ask_saves_the_chart_and_table(embedded: Stack, tmp_path: Path
                                                         ) -> None:
    data = sales_csv(rows=120)
    (tmp_path / "sales.csv").write_bytes(data)
    (tmp_path / "bomb.xlsx").write_bytes(zip_bomb_xlsx())
    config = embedded.config.model_copy(update={"llm_model": ANALYST, "tool_timeout_s": 60.0})
    outbox = config.data_dir / "outbox"
    async with console_chat(config, embedded.redis, worker=True, outbox=outbox,
                            answer_timeout_s=60) as chat:
        await chat.session.run(lines(
            "/attach", f"/attach {tmp_path / 'missing.csv'}", f"/attach {tmp_path / 'bomb.xlsx'}",
            f"/attach {tmp_path / 'sales.csv'}", "Calculate accessory attach rates by device"))

    text = chat.output.getvalue()
    assert "/attach PATH" in text and "/attach PATH" in HINT
    assert "not attached:" in text and "missing.csv is not a file" in text
    assert "bomb.xlsx: compressed suspiciously well" in text
    assert "attached sales.csv" in text
    saved = sorted(outbox.iterdir())
    assert [p.name.split("-", 1)[1] for p in saved] == ["attach_rates.csv", "attach_rates.png"]
    for path in saved:
        assert f"saved {path}" in text
    rows = [line.split(",") for line in saved[0].read_text().splitlines()[1:]]
    assert rates_close({row[0]: float(row[1]) for row in rows}, data)
    assert chat.session.attached == []  # used once

