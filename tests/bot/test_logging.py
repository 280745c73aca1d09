"""Where the logs go and what they look like: plain lines for files, pipes and collectors,
rich text for a person at a terminal, JSON lines on request."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.observability import setup_logging

ROOT = Path(__file__).resolve().parents[2]
LONG = "execution 42 answered in the thread of a very long conversation " * 4


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_logs_to_a_file_or_pipe_are_one_plain_line_per_record() -> None:
    out = io.StringIO()
    setup_logging("INFO", "text", stream=out)
    logging.getLogger("engine.execute").info("answered: %s", LONG)
    logging.getLogger("engine.execute").debug("not at INFO")

    lines = out.getvalue().splitlines()
    assert len(lines) == 1  # not wrapped at a terminal's width, no box drawing
    assert lines[0].endswith(f" INFO engine.execute: answered: {LONG}")
    assert lines[0][:4].isdigit()  # the time comes first


def test_logs_at_a_terminal_are_rich_text() -> None:
    primary, secondary = os.openpty()
    with os.fdopen(secondary, "w") as terminal:
        setup_logging("INFO", "text", stream=terminal)
        logging.getLogger("bot.worker").warning("heartbeat of execution 7 failed")
        terminal.flush()
    shown = os.read(primary, 65536).decode()
    os.close(primary)
    assert "\x1b[" in shown  # coloured
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert "WARNING" in plain and "heartbeat of execution 7 failed" in plain


def test_json_logs_are_one_object_per_line() -> None:
    out = io.StringIO()
    setup_logging("INFO", "json", stream=out)
    logging.getLogger("engine.execute").info("answered: %s", LONG)
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "INFO"
    assert record["logger"] == "engine.execute"
    assert record["message"] == f"answered: {LONG}"


def test_a_worker_writes_its_logs_to_stderr_as_plain_lines(tmp_path: Path) -> None:
    """`evobot worker` piped to a collector: its log lines are plain, on stderr (stdout is
    left for output, such as `evobot export`'s)."""
    env = {"PATH": os.environ.get("PATH", ""), "DATA_DIR": str(tmp_path),
           "LLM_MODEL": "scripted/echo", "EVOBOT_ALLOW_MODEL_REQUESTS": "0",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "worker", "--burst"], cwd=ROOT,
                          env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = done.stderr.decode().splitlines()
    assert any(" INFO rq.worker: " in line for line in lines), lines[-20:]
    assert "rq.worker" not in done.stdout.decode()
