"""`evobot chat`: type objectives, rate answers, run /commands — rendered with rich."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.spinner import Spinner
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from adapters.console.convert import parse_line
from adapters.console.files import USAGE, read_attachment, save_outputs
from engine.commands import listed
from engine.files.limits import FileRefused
from engine.service import EvobotService
from engine.storage.outage import storage_unavailable
from engine.types import (
    AnswerDelta,
    AnswerReady,
    Attachment,
    CommandReply,
    Delivery,
    Document,
    EvolutionAnnounced,
    ExecutionFailed,
    FeedbackCategory,
    FileShared,
    InboundCommand,
    InboundFeedback,
    InboundMessage,
    MessageRef,
    Notice,
    OutboundEvent,
    RolledBack,
    SandboxFile,
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
    + "; [bold]/attach PATH[/] shares a file with your next objective (or /import); "
    "Ctrl-D quits."
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


def answer_panel(text: str, footer: str | None = None) -> Panel:
    """An answer; without a footer, one still being written (it grows as text streams in)."""
    if footer is None:
        return Panel(Text(text.rstrip() + " ▍"), title="evobot", subtitle="writing…",
                     title_align="left", subtitle_align="right", border_style="dim green")
    return Panel(Text(text), title="evobot", subtitle=footer, title_align="left",
                 subtitle_align="right", border_style="green")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class ConsoleNotifier:
    """Prints engine events; wakes the chat loop when the answer it waits for arrives, and
    keeps the text of answers still being written for the chat loop's live view.

    Called from the worker thread's event loop, so hand-offs go through call_soon_threadsafe.
    """

    def __init__(self, console: Console, outbox: Path | None = None) -> None:
        self.console = console
        self.outbox = outbox  # where the files answers bring are saved (DATA_DIR/outbox)
        self._waiters: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = {}
        self._partial: dict[int, str] = {}  # streamed answers so far, by execution id

    def partial(self, execution_id: int) -> str | None:
        return self._partial.get(execution_id)

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
        if isinstance(event, AnswerDelta):
            self._partial[event.execution_id] = event.text
            return Delivery(ref=_answer_ref(event.execution_id))
        if isinstance(event, AnswerReady):
            self._partial.pop(event.execution_id, None)
            self.console.print(answer_panel(event.text, event.footer))
            self._save(event.execution_id, event.files)
            self._wake(event.execution_id)
            return Delivery(ref=_answer_ref(event.execution_id))
        if isinstance(event, ExecutionFailed):
            self._partial.pop(event.execution_id, None)
            self.console.print(Panel(Text(event.reason), title="failed", border_style="red"))
            self._wake(event.execution_id)
            return Delivery()
        if isinstance(event, EvolutionAnnounced | ToolAnnounced | RolledBack | Notice):
            self.console.print(render_document(event.document))
        if isinstance(event, FileShared):
            self.console.print(Text(event.caption))
            self._save(0, [event.file])
        return Delivery()

    def _save(self, execution_id: int, files: list[SandboxFile]) -> None:
        if not files:
            return
        if self.outbox is None:
            self.console.print(Text(f"({len(files)} files not saved: no outbox)", style="dim"))
            return
        for path in save_outputs(self.outbox, execution_id, files):
            self.console.print(Text(f"saved {path}", style="cyan"))


def _answer_ref(execution_id: int) -> MessageRef:
    return MessageRef(channel_id=CHANNEL, message_id=str(execution_id))


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
        self.attached: list[Attachment] = []  # /attach: sent with the next objective

    async def handle_line(self, line: str) -> None:
        if line.strip().split(" ", 1)[0] == "/attach":
            self._attach(line.strip()[len("/attach"):])
            return
        parsed = parse_line(
            line, tenant_id=self.tenant_id, user_id=self.user_id, channel_id=CHANNEL,
            message_id=f"{self._session_tag()}-{next(self._ids)}",
        )
        if parsed is None:
            return
        if isinstance(parsed, InboundMessage):
            attachments, self.attached = self.attached, []
            await self._objective(parsed.model_copy(update={"attachments": attachments}))
        elif isinstance(parsed, InboundFeedback):
            result = await self.service.handle_feedback(parsed)
            style = "green" if result.recorded else "yellow"
            extra = " Evolution queued." if result.evolution_queued else ""
            self.console.print(Text(result.message + extra, style=style))
        elif isinstance(parsed, InboundCommand):
            if parsed.name == "import":  # `/attach agent.json`, then `/import`
                parsed, self.attached = parsed.model_copy(
                    update={"attachments": self.attached}), []
            self.print_reply(await self.service.handle_command(parsed))

    def _attach(self, path: str) -> None:
        if not path.strip():
            self.console.print(Text(USAGE, style="yellow"))
            return
        try:
            attachment = read_attachment(path)
        except (FileRefused, OSError) as exc:
            self.console.print(Text(f"not attached: {exc}", style="yellow"))
            return
        self.attached.append(attachment)
        self.console.print(Text(f"attached {attachment.name} ({len(attachment.data):,} bytes)"
                                " — it goes with your next objective", style="green"))

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
        thinking = Spinner("dots", f"v{accepted.version} is thinking…")

        def view() -> RenderableType:  # the answer as it streams in, above the spinner
            partial = self.notifier.partial(accepted.execution_id)
            return thinking if partial is None else Group(answer_panel(partial), thinking)

        # transient: the growing panel gives way to the final one the notifier prints
        with Live(get_renderable=view, console=self.console, transient=True,
                  refresh_per_second=8):
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
                self.console.print(Text(_problem(exc), style="bold red"))


def _problem(exc: Exception) -> str:
    if storage_unavailable(exc):
        return ("error: the database can't record anything right now (disk full or out of "
                "reach); nothing was saved — try again later.")
    return f"error: {exc}"


async def stdin_lines(console: Console) -> AsyncIterator[str]:
    while True:
        try:
            line = await asyncio.to_thread(console.input, "[bold blue]you>[/] ")
        except (EOFError, KeyboardInterrupt):
            return
        yield line
