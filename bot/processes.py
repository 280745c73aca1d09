"""The long-running platform processes: serve (HTTP), slack (Socket Mode), telegram (polling)."""

from __future__ import annotations

from rich.console import Console

from bot.config import Config


def run(command: str, config: Config) -> int:
    Console(stderr=True).print(f"[red]`evobot {command}` is not available in this build yet[/]")
    return 2
