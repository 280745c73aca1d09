"""Start-up without the collector's repeated full scans: a process loads with collection
paused, freezes what it loaded once its runtime is built, and collects as usual after."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from bot.startup import loaded, starting

ROOT = Path(__file__).resolve().parents[2]

LOAD_A_RUNTIME = textwrap.dedent("""
    import asyncio, gc, json
    from bot.startup import starting

    report = {}
    with starting():
        full_before = gc.get_stats()[2]["collections"]
        from bot.config import load_config
        from bot.wiring import build_runtime, close_runtime
        from engine.notify import NotifierRouter

        async def run():
            runtime = await build_runtime(load_config(), NotifierRouter())
            full = gc.get_stats()[2]["collections"] - full_before
            report["full_collections_while_loading"] = full
            report["collecting_once_built"] = gc.isenabled()
            report["frozen_once_built"] = gc.get_freeze_count()
            cycle = []
            cycle.append(cycle)
            del cycle
            report["cycles_collected_after"] = gc.collect()
            await close_runtime(runtime)

        asyncio.run(run())
    report["collecting_after_the_command"] = gc.isenabled()
    print(json.dumps(report))
""")


def test_a_process_loads_without_full_collections_then_collects_as_usual(
    tmp_path: Path,
) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "DATA_DIR": str(tmp_path),
           "LLM_MODEL": "scripted/default", "EVOBOT_ALLOW_MODEL_REQUESTS": "0",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-c", LOAD_A_RUNTIME], cwd=ROOT, env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report["full_collections_while_loading"] == 0
    assert report["collecting_once_built"] is True
    assert report["frozen_once_built"] > 100_000  # the modules, classes and tables loaded
    assert report["cycles_collected_after"] >= 1  # garbage made later is still collected
    assert report["collecting_after_the_command"] is True


def test_a_process_that_did_not_pause_keeps_its_collector() -> None:
    frozen = gc.get_freeze_count()
    loaded()
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_a_command_that_builds_no_runtime_still_collects_once_it_is_done() -> None:
    try:
        with starting():
            assert not gc.isenabled()  # loading
        assert gc.isenabled()
    finally:
        gc.unfreeze()  # this test process's own objects
