"""Files in Telegram messages: fetching what users send (getFile, then a download from the
Bot API's file URL, capped while downloading: adapters/common/download.py) and sending what
the agent makes (sendPhoto for images Telegram can show, sendDocument otherwise)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from telegram import Bot, InputFile, Message, ReplyParameters
from telegram.error import TelegramError

from adapters.common.download import TOO_LARGE, DownloadRefused, capped_download
from adapters.telegram.inbound import SharedFile
from engine.files.limits import IMAGE_TYPES, MAX_FILE_BYTES, MB, kind_of
from engine.types import Attachment, SandboxFile

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60.0
PHOTO_MAX_BYTES = 10 * MB  # sendPhoto's limit; a larger image goes as a document


class FileFetcher:
    def __init__(self, bot: Bot, *, max_bytes: int = MAX_FILE_BYTES,
                 timeout_s: float = DOWNLOAD_TIMEOUT_S) -> None:
        self.bot = bot
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def fetch_all(self, files: list[SharedFile]) -> list[Attachment]:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(await asyncio.gather(*(self.fetch(session, f) for f in files)))

    async def fetch(self, session: aiohttp.ClientSession, file: SharedFile) -> Attachment:
        if file.size is not None and file.size > self.max_bytes:
            return Attachment(name=file.name, problem=TOO_LARGE)
        try:
            found = await self.bot.get_file(file.file_id)
            if not found.file_path:
                raise DownloadRefused("Telegram has no copy of it to download")
            data = await capped_download(session, found.file_path, max_bytes=self.max_bytes)
        except DownloadRefused as exc:
            return Attachment(name=file.name, problem=str(exc))
        except TelegramError as exc:  # getFile refuses files over 20 MB ("file is too big")
            too_big = "too big" in str(exc).lower()
            return Attachment(name=file.name, problem=TOO_LARGE if too_big
                              else f"Telegram refused the download ({exc})")
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("download of Telegram file %s failed: %r", file.file_id, exc)
            return Attachment(name=file.name, problem="the download from Telegram failed")
        return Attachment(name=file.name, data=data)


async def send_files(bot: Bot, chat_id: int, files: list[SandboxFile], *,
                     thread_id: int | None = None, reply_to: int | None = None,
                     caption: str = "") -> list[Message]:
    """Each file as its own message (the first with the caption), replying to `reply_to`."""
    sent = []
    for index, file in enumerate(files):
        kwargs: dict[str, Any] = {"chat_id": chat_id, "message_thread_id": thread_id,
                                  "caption": caption[:1024] if index == 0 and caption else None}
        if reply_to is not None:
            kwargs["reply_parameters"] = ReplyParameters(message_id=reply_to,
                                                         allow_sending_without_reply=True)
        upload = InputFile(file.data, filename=file.name)
        if kind_of(file.name) in IMAGE_TYPES and len(file.data) <= PHOTO_MAX_BYTES:
            sent.append(await bot.send_photo(photo=upload, **kwargs))
        else:
            sent.append(await bot.send_document(document=upload, **kwargs))
    return sent
