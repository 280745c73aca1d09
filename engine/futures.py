"""Handing an outcome to a caller that waits on a future, for code that does work on behalf
of several callers at once (group commit in engine/ingress.py, shared Redis round trips in
adapters/common/coalesce.py)."""

from __future__ import annotations

import asyncio
from typing import Any


def resolve(future: asyncio.Future[Any], outcome: Any) -> None:
    """The outcome as the future's result, or its exception (cancelled: cancelled); nothing
    when the caller went away already (a dropped connection)."""
    if future.done():
        return
    if isinstance(outcome, asyncio.CancelledError):
        future.cancel()
    elif isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
