"""Small helpers every command handler uses to answer and to read its arguments."""

from __future__ import annotations

from engine.present import text_document
from engine.types import CommandReply


def reply(title: str, text: str = "", *, ok: bool = True, private: bool = True) -> CommandReply:
    return CommandReply(ok=ok, document=text_document(title, text), private=private)


def refuse(text: str) -> CommandReply:
    return reply("Sorry", text, ok=False)


def int_arg(args: list[str], index: int) -> int | None:
    """The index-th argument as a version/evolution number ("v3" or "3"); None if absent."""
    if len(args) <= index:
        return None
    value = args[index].lstrip("v")
    if not value.isdigit():
        raise ValueError(f"`{args[index]}` is not a version number")
    return int(value)
