"""Request body limits, enforced before anything reads the body (pure ASGI middleware).

A request whose Content-Length is over its route's limit is answered 413 at once; one without
a length (chunked) is read up to the limit and answered 413 as soon as it goes over. Either way
the app never sees an oversized body: no signature is computed and no JSON parsed for it.
Under the limit, the buffered body is replayed to the app, then the server's `receive` is
handed back, so the app still hears a disconnect (streaming responses rely on that).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """`limits` maps a path prefix to its maximum body in bytes; the longest matching prefix
    wins ("" matches every path); a path no prefix matches is not limited here."""

    def __init__(self, app: ASGIApp, limits: Mapping[str, int]) -> None:
        self.app = app
        self.limits = sorted(limits.items(), key=lambda item: len(item[0]), reverse=True)

    def limit_for(self, path: str) -> int | None:
        for prefix, max_bytes in self.limits:
            if path.startswith(prefix):
                return max_bytes
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit, scope, receive, send)
            return
        buffered = await _read_up_to(receive, limit)
        if buffered is None:
            await _too_large(limit, scope, receive, send)
            return
        await self.app(scope, _replay(buffered, receive), send)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _read_up_to(receive: Receive, limit: int) -> list[Message] | None:
    """The request's messages up to the end of its body (or a disconnect); None as soon as
    the body goes over `limit`."""
    messages: list[Message] = []
    seen = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages  # a disconnect: the app handles it as it would have
        seen += len(message.get("body", b""))
        if seen > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _too_large(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        {"ok": False, "error": "request body too large", "limit_bytes": limit}, status_code=413
    )
    await response(scope, receive, send)
