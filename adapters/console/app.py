"""`evobot chat`: type objectives, rate answers, run /commands — rendered with rich."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from adapters.console.convert import parse_line
from engine.commands import listed
from engine.service import EvobotService
from engine.types import (
    AnswerReady,
    CommandReply,
    Delivery,
    Document,
    EvolutionAnnounced,
    ExecutionFailed,
    FeedbackCategory,
    InboundCommand,
    InboundFeedback,
    InboundMessage,
    MessageRef,
    Notice,
    OutboundEvent,
    RolledBack,
    ToolAnnounced,
    Working,
)

CHANNEL = "console"
HINT = (
    "Type an objective. Rate the last answer with [bold]+1[/], [bold]-1 <comment>[/] "
    "(optionally with a category: [bold]-1 too-long: <comment>[/] — "
    + ", ".join(c.value.replace("_", "-") for c in FeedbackCategory)
    + "), [bold]1[/]–[bold]5[/] or [bold]comment <text>[/]; commands: "
    + " ".join(f"/{c.name}" for c in listed())
    + "; Ctrl-D quits."
)


def render_document(document: Document) -> RenderableType:
    parts: list[RenderableType] = []
    title = document.summary
    for block in document.blocks:
        if block.kind == "header":
            title = block.text
        elif block.kind == "text":
            parts.append(Text(block.text))
        elif block.kind == "context":
            parts.append(Text(block.text, style="dim"))
        elif block.kind == "diff":
            parts.append(Syntax(block.text, "diff", theme="ansi_dark", word_wrap=True))
        elif block.kind == "code":
            parts.append(Syntax(block.text, "text", theme="ansi_dark", word_wrap=True))
        elif block.kind == "fields":
            table = Table.grid(padding=(0, 2))
            for key, value in block.fields:
                table.add_row(Text(key, style="bold"), Text(value))
            parts.append(table)
    hints = [f"{b.label}: /{b.action} {b.value}" for b in document.buttons]
    if hints:
        parts.append(Text("  ".join(hints), style="cyan"))
    return Panel(Group(*parts), title=title, title_align="left", border_style="magenta")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ConsoleNotifier:
    """Prints engine events; wakes the chat loop when the answer it waits for arrives.

    Called from the worker thread's event loop, so hand-offs go through call_soon_threadsafe.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = {}

    def expect(self, execution_id: int) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters[execution_id] = (loop, future)
        return future

    def _wake(self, execution_id: int) -> None:
        waiter = self._waiters.pop(execution_id, None)
        if waiter is not None:
            loop, future = waiter
            loop.call_soon_threadsafe(_resolve, future)

    async def deliver(self, event: OutboundEvent) -> Delivery:
        if isinstance(event, Working):
            return Delivery()
        if isinstance(event, AnswerReady):
            self.console.print(
                Panel(Text(event.text), title="evobot", subtitle=event.footer,
                      title_align="left", subtitle_align="right", border_style="green")
            )
            self._wake(event.execution_id)
            return Delivery(ref=MessageRef(channel_id=CHANNEL, message_id=str(event.execution_id)))
        if isinstance(event, ExecutionFailed):
            self.console.print(Panel(Text(event.reason), title="failed", border_style="red"))
            self._wake(event.execution_id)
            return Delivery()
        if isinstance(event, EvolutionAnnounced | ToolAnnounced | RolledBack | Notice):
            self.console.print(render_document(event.document))
        return Delivery()


class ChatSession:
    def __init__(
        self,
        service: EvobotService,
        notifier: ConsoleNotifier,
        console: Console,
        *,
        tenant_id: str = "local:default",
        user_id: str = "console-user",
        answer_timeout_s: float = 600.0,
    ) -> None:
        self.service = service
        self.notifier = notifier
        self.console = console
        self.tenant_id = tenant_id
        self.user_id = user_id
        self.answer_timeout_s = answer_timeout_s
        self._ids = itertools.count(1)

    async def handle_line(self, line: str) -> None:
        parsed = parse_line(
            line, tenant_id=self.tenant_id, user_id=self.user_id, channel_id=CHANNEL,
            message_id=f"{self._session_tag()}-{next(self._ids)}",
        )
        if parsed is None:
            return
        if isinstance(parsed, InboundMessage):
            await self._objective(parsed)
        elif isinstance(parsed, InboundFeedback):
            result = await self.service.handle_feedback(parsed)
            style = "green" if result.recorded else "yellow"
            extra = " Evolution queued." if result.evolution_queued else ""
            self.console.print(Text(result.message + extra, style=style))
        elif isinstance(parsed, InboundCommand):
            self.print_reply(await self.service.handle_command(parsed))

    def _session_tag(self) -> str:
        if not hasattr(self, "_tag"):
            import uuid

            self._tag = uuid.uuid4().hex[:8]
        return self._tag

    async def _objective(self, message: InboundMessage) -> None:
        accepted = await self.service.handle_message(message)
        if accepted is None:
            return
        answered = self.notifier.expect(accepted.execution_id)
        with self.console.status(f"v{accepted.version} is thinking…", spinner="dots"):
            try:
                await asyncio.wait_for(answered, timeout=self.answer_timeout_s)
            except TimeoutError:
                self.console.print(Text("Still working — the answer will print when ready.",
                                        style="yellow"))

    def print_reply(self, reply: CommandReply) -> None:
        self.console.print(render_document(reply.document))

    async def run(self, lines: AsyncIterator[str]) -> None:
        self.console.print(Panel(Text.from_markup(HINT), title="evobot chat", border_style="blue"))
        async for line in lines:
            try:
                await self.handle_line(line)
            except Exception as exc:  # keep the session alive; say what went wrong
                self.console.print(Text(f"error: {exc}", style="bold red"))


async def stdin_lines(console: Console) -> AsyncIterator[str]:
    while True:
        try:
            line = await asyncio.to_thread(console.input, "[bold blue]you>[/] ")
        except (EOFError, KeyboardInterrupt):
            return
        yield line
