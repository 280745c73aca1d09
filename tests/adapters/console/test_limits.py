"""The engine's length limits as a console user meets them: a clear message with the
length and the limit, and nothing recorded."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.service import MAX_COMMENT_CHARS, MAX_OBJECTIVE_CHARS
from engine.storage.models import Execution, Feedback
from tests.adapters.console.chat import console_chat
from tests.conftest import Stack


async def test_too_long_objectives_and_comments_are_refused_and_not_recorded(
    embedded: Stack,
) -> None:
    objective = "a" * 12_345
    comment = "b" * (MAX_COMMENT_CHARS + 1)
    async with console_chat(embedded.config, embedded.redis, answer_timeout_s=5) as chat:
        await chat.session.handle_line(objective)
        await chat.session.handle_line("comment " + comment)
        await chat.session.handle_line("-1 " + comment)
        async with chat.runtime.sessions() as db:
            executions = await db.scalar(select(func.count()).select_from(Execution))
            feedback = await db.scalar(select(func.count()).select_from(Feedback))
    text = " ".join(chat.output.getvalue().split())
    assert (f"That message is too long (12,345 characters; the limit is "
            f"{MAX_OBJECTIVE_CHARS:,}).") in text
    assert text.count(f"That comment is too long ({len(comment):,} characters; the limit is "
                      f"{MAX_COMMENT_CHARS:,}).") == 2
    assert (executions, feedback) == (0, 0)


async def test_a_full_disk_is_a_clear_error_and_the_database_stays_readable(
    embedded: Stack,
) -> None:
    from collections.abc import AsyncIterator
    from typing import Any

    from sqlalchemy import event, text

    async def questions() -> AsyncIterator[str]:
        for n in range(40):
            yield f"question {n} " + "x" * 7_000

    async with console_chat(embedded.config, embedded.redis, answer_timeout_s=0.01) as chat:
        runtime = chat.runtime
        async with runtime.sessions() as db:
            pages = int(await db.scalar(text("PRAGMA page_count")) or 0)

        def cap(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA max_page_count = {pages + 8}")
            cursor.close()

        event.listen(runtime.database.sync_engine, "connect", cap)
        await runtime.database.dispose()
        await chat.session.run(questions())
        event.remove(runtime.database.sync_engine, "connect", cap)
        await runtime.database.dispose()
        async with runtime.sessions() as db:
            integrity = await db.scalar(text("PRAGMA integrity_check"))
            executions = await db.scalar(select(func.count()).select_from(Execution))
    text_out = " ".join(chat.output.getvalue().split())
    assert "the database can't record anything right now (disk full" in text_out
    assert integrity == "ok" and 0 < (executions or 0) < 40
