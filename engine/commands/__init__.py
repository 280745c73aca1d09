"""Slash commands and the buttons that map onto them. `registry` declares each command once;
`dispatch.run` runs one; the handlers live in modules named by what they manage."""

from engine.commands.dispatch import run
from engine.commands.registry import COMMANDS, Access, Command, find, listed, needs_admin

__all__ = ["COMMANDS", "Access", "Command", "find", "listed", "needs_admin", "run"]
