"""Files arriving with a message: check them against the limits, store the accepted ones
with the execution, and tell the user plainly about any that were refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.files import store
from engine.files.limits import (
    LIMITS_TEXT,
    MAX_FILES_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    MB,
    CheckedFile,
    FileRefused,
    check_file,
    safe_name,
    unique_names,
)
from engine.storage.files import IN
from engine.storage.repo import TenantRepo
from engine.types import Attachment, SandboxFile

# what the agent is asked when files come without a word (a Telegram document, no caption)
FILES_ONLY_OBJECTIVE = "Look at the attached file(s) and tell me what they contain."


@dataclass
class Intake:
    accepted: list[CheckedFile] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def nothing_usable(self) -> bool:
        """Files were shared and none of them can be used: answering would miss the point."""
        return bool(self.refusals) and not self.accepted


def check_attachments(attachments: list[Attachment]) -> Intake:
    intake = Intake()
    total = 0
    for index, attachment in enumerate(attachments):
        name = safe_name(attachment.name)
        if index >= MAX_FILES_PER_MESSAGE:
            intake.refusals.append(f"{name}: at most {MAX_FILES_PER_MESSAGE} files a message")
            continue
        try:
            if attachment.problem:
                raise FileRefused(f"{name}: {attachment.problem}")
            checked = check_file(attachment.name, attachment.data)
            if total + len(checked.data) > MAX_MESSAGE_BYTES:
                raise FileRefused(f"{name}: the files of one message may add up to "
                                  f"{MAX_MESSAGE_BYTES // MB} MB")
        except FileRefused as refused:
            intake.refusals.append(str(refused))
            continue
        total += len(checked.data)
        intake.accepted.append(checked)
    intake.accepted = unique_names(intake.accepted)
    return intake


async def store_inputs(repo: TenantRepo, root: Path, execution_id: int,
                       files: list[CheckedFile]) -> None:
    for file in files:
        await store.save(repo, root, execution_id=execution_id, direction=IN,
                         file=SandboxFile(name=file.name, media_type=file.media_type,
                                          data=file.data))


def refusal_text(intake: Intake) -> str:
    """What we tell the sender about refused files (and whether the message still runs)."""
    outcome = ("Nothing was run: please share a file I can read." if intake.nothing_usable
               else "I'm answering with the rest.")
    lines = "\n".join(f"• {refusal}" for refusal in intake.refusals)
    return (f"I couldn't use {_count(intake.refusals)}:\n{lines}\n{outcome}\n"
            f"Accepted: {LIMITS_TEXT}.")


def _count(refusals: list[str]) -> str:
    return "a file" if len(refusals) == 1 else f"{len(refusals)} files"
