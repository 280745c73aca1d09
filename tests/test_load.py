"""A short run of bench/load.py: concurrent conversations across tenants through the real
Telegram webhook, engine, worker and notifier. Every objective is answered exactly once, in
its own tenant's chat with its own text; every rating is recorded."""

from __future__ import annotations

from pathlib import Path

from bench.load import run_load
from tests.conftest import make_config


async def test_concurrent_conversations_across_tenants(tmp_path: Path) -> None:
    config = make_config(tmp_path, EVOBOT_EVOLVE_AFTER_RATINGS=1_000_000)
    report, chats = await run_load(config, tenants=4, conversations=12, seconds=10,
                                   settle_s=5)
    assert report.objectives >= 12 and report.ratings >= 12
    assert report.problems(chats) == []
