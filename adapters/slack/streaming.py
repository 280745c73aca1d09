"""Answers shown in Slack while they are written (see docs/ARCHITECTURE.md, Adapters).

- `NativeStream`: Slack's streaming methods (chat.startStream / appendStream / stopStream,
  through slack_sdk's AsyncChatStream) in the objective's thread. The text is the model's
  Markdown, escaped one character at a time (outbound.stream_markdown) so increments append;
  the stop attaches the feedback controls and the footer. An answer longer than one message's
  budget continues in a new stream, as the non-streamed answer continues in a new message.
- `EditedStream`: messages posted once and then updated with chat.update, laid out as the
  non-streamed answer is (outbound.partial_messages), which they become at the end. Used
  where a workspace refuses streaming, outside threads, for the partial message an earlier,
  interrupted attempt left, and when a stream can't go on (the text restarted, the stream
  ended on Slack's side).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_chat_stream import AsyncChatStream
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import outbound
from adapters.slack.outbound import SlackMessage
from engine.types import AnswerReady

Post = Callable[[SlackMessage], Awaitable[str]]  # posts in the answer's thread; its ts
Pace = Callable[[], Awaitable[None]]  # waits for this process's turn in the channel

# a workspace (or its plan, or this channel type) doesn't offer streaming
STREAMING_REFUSED = {
    "unknown_method", "method_not_supported_for_channel_type", "channel_type_not_supported",
    "not_allowed", "not_allowed_token_type", "missing_scope", "feature_not_enabled",
}
THINKING = "is thinking…"


class Diverged(Exception):
    """The answer so far no longer continues what was streamed (a step turned into tool calls
    and the text started again): streamed text can't be taken back."""


class EditedStream:
    """The answer's messages, posted as they are needed and updated in place."""

    def __init__(self, client: AsyncWebClient, channel: str, post: Post, pace: Pace,
                 posted: list[str] | None = None) -> None:
        self.client = client
        self.channel = channel
        self.post = post
        self.pace = pace
        self.posted = list(posted or [])
        # what each message shows (None: unknown, a message an earlier attempt left)
        self.shown: list[SlackMessage | None] = [None] * len(self.posted)

    @property
    def first_ts(self) -> str | None:
        return self.posted[0] if self.posted else None

    async def write(self, text: str) -> None:
        await self.show(outbound.partial_messages(text))

    async def show(self, messages: list[SlackMessage]) -> str:
        """Make the posted messages show `messages` (updating only what changed); the ts of
        the last one."""
        for index, message in enumerate(messages):
            if index < len(self.posted):
                if self.shown[index] != message:
                    await self._update(index, message)
            else:
                self.posted.append(await self.post(message))
                self.shown.append(message)
        for ts in self.posted[len(messages):]:  # the answer got shorter
            with contextlib.suppress(SlackApiError):
                await self.client.chat_delete(channel=self.channel, ts=ts)
        del self.posted[len(messages):], self.shown[len(messages):]
        return self.posted[-1]

    async def fail(self, reason: str) -> str:
        """Mark the last message as cut short (or, unknown, turn it into the notice)."""
        last = self.shown[-1]
        notice = (outbound.with_failure(last, reason) if last is not None
                  else outbound.failure_text_message(reason))
        await self._update(len(self.posted) - 1, notice)
        return self.posted[-1]

    async def _update(self, index: int, message: SlackMessage) -> None:
        await self.pace()
        await self.client.chat_update(channel=self.channel, ts=self.posted[index],
                                      text=message.text, blocks=message.blocks)
        self.shown[index] = message


class NativeStream:
    """One answer through Slack's streaming methods, one stream per message."""

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str, *,
                 team_id: str, user_id: str) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.recipient = {"recipient_team_id": team_id, "recipient_user_id": user_id}
        self.messages: list[str] = []  # ts of every streamed message, oldest first
        self.sent = ""  # the answer text handed to the streams so far
        self.start = 0  # where the current message begins in the answer text
        self.inside_fence = False  # the current message began inside a ``` block
        self._streamer: AsyncChatStream | None = None
        self._fresh = False  # nothing handed to the current message yet

    @property
    def first_ts(self) -> str | None:
        return self.messages[0] if self.messages else None

    async def write(self, text: str) -> None:
        if not text.startswith(self.sent):
            raise Diverged
        await self._cut_long(text)
        await self._append(text)

    async def finish(self, event: AnswerReady) -> str:
        """The rest of the answer and the controls and footer, in the stop."""
        if not event.text.startswith(self.sent):
            raise Diverged
        await self._cut_long(event.text)
        await self._stop(event.text, blocks=outbound.answer_controls(event))
        return self.messages[-1]

    async def fail(self, reason: str) -> str:
        """Stop where the text got to, the failure notice under it."""
        await self._stop(self.sent, blocks=outbound.failure_text_message(reason).blocks)
        return self.messages[-1]

    async def abandon(self) -> list[str]:
        """Stop streaming as it stands (the messages then take chat.update); their ts."""
        if self._streamer is not None and self._streamer.ts is not None:
            with contextlib.suppress(SlackApiError):
                await self._streamer.stop()
        self._streamer = None
        return list(self.messages)

    # --- pieces ---------------------------------------------------------------------

    async def _cut_long(self, text: str) -> None:
        """Past one message's budget, stop this message and go on in a new one."""
        while (cut := outbound.stream_cut(text, self.start, len(self.sent))) is not None:
            inside = outbound.open_fence(text[self.start:cut], self.inside_fence)
            await self._stop(text[:cut])
            self.inside_fence, self.start = inside, cut

    async def _append(self, upto: str) -> None:
        streamer = await self._current()  # first: a new message may reopen a code block
        markdown = self._take(upto)
        for piece in outbound.stream_pieces(markdown):
            await streamer.append(markdown_text=piece)  # kept in its buffer if the call fails
            self._note_ts(streamer)

    async def _stop(self, upto: str, blocks: list[dict[str, object]] | None = None) -> None:
        """Stop the current message after the text up to `upto`, its code block closed."""
        streamer = await self._current()
        closing = "\n```" if outbound.open_fence(upto[self.start:], self.inside_fence) else ""
        pieces = outbound.stream_pieces(self._take(upto) + closing)
        for piece in pieces[:-1]:
            await streamer.append(markdown_text=piece)
        await streamer.stop(markdown_text=pieces[-1] if pieces else None, blocks=blocks)
        self._note_ts(streamer)
        self._streamer = None

    def _take(self, upto: str) -> str:
        """The escaped text after what was handed over, up to `upto` (a message that begins
        inside a code block reopens it first); handed over from now on."""
        new = upto[len(self.sent):]
        self.sent = upto
        opening = "```\n" if self._fresh and self.inside_fence else ""
        self._fresh = False
        return opening + outbound.stream_markdown(new)

    async def _current(self) -> AsyncChatStream:
        if self._streamer is None:
            self._streamer = await self.client.chat_stream(
                channel=self.channel, thread_ts=self.thread_ts, buffer_size=1, **self.recipient,
            )
            self._fresh = True
        return self._streamer

    def _note_ts(self, streamer: AsyncChatStream) -> None:
        if streamer.ts and streamer.ts not in self.messages:
            self.messages.append(streamer.ts)
