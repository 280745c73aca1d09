"""Files in Slack messages: downloading what users share, uploading what the agent makes.

Download: each file of the event is fetched from its `url_private_download` with the bot
token (scope `files:read`), streamed and cut off past the engine's per-file limit, so a
huge file (or one whose declared size lies) never fills memory or disk. The token is only
ever sent to Slack's file host (or the configured API's host, for the test double).
A failed download becomes an `Attachment` with a `problem`, which the engine reports.

Upload: `files_upload_v2` (slack_sdk's external upload: files.getUploadURLExternal, the
upload, files.completeUploadExternal; scope `files:write`), all of an answer's files in one
call, into the answer's thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.common.download import TOO_LARGE, DownloadRefused, capped_download
from engine.files.limits import MAX_FILE_BYTES, MAX_FILES_PER_MESSAGE
from engine.types import Attachment, SandboxFile

log = logging.getLogger(__name__)

SLACK_FILE_HOSTS = frozenset({"files.slack.com"})
DOWNLOAD_TIMEOUT_S = 60.0
# Slack redirects a file request it won't serve to its sign-in page
NO_ACCESS = "Slack refused the download (does the app have the files:read scope?)"


def shared_files(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The files attached to a message event (an empty list for none, or a malformed field)."""
    files = event.get("files")
    if not isinstance(files, list):
        return []
    return [f for f in files if isinstance(f, dict)][:MAX_FILES_PER_MESSAGE + 1]


class FileFetcher:
    """Downloads shared files with the bot token of the workspace they were shared in."""

    def __init__(self, api_url: str, *, max_bytes: int = MAX_FILE_BYTES,
                 timeout_s: float = DOWNLOAD_TIMEOUT_S) -> None:
        self.hosts = SLACK_FILE_HOSTS | {urlsplit(api_url).netloc}
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def fetch_all(self, files: list[dict[str, Any]], token: str | None
                        ) -> list[Attachment]:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(await asyncio.gather(*(self.fetch(session, f, token) for f in files)))

    async def fetch(self, session: aiohttp.ClientSession, file: dict[str, Any],
                    token: str | None) -> Attachment:
        name = str(file.get("name") or file.get("title") or "file")
        problem = self.refusal(file)
        if problem is not None:
            return Attachment(name=name, problem=problem)
        url = str(file.get("url_private_download") or file.get("url_private"))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            data = await capped_download(session, url, headers=headers,
                                         max_bytes=self.max_bytes)
        except DownloadRefused as exc:
            return Attachment(name=name, problem=NO_ACCESS if exc.status else str(exc))
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("download of Slack file %s failed: %r", file.get("id"), exc)
            return Attachment(name=name, problem="the download from Slack failed")
        return Attachment(name=name, data=data)

    def refusal(self, file: dict[str, Any]) -> str | None:
        """Why a file can't be fetched, judged from the event alone."""
        if file.get("mode") in ("tombstone", "hidden_by_limit") or file.get("is_external"):
            return "Slack doesn't let the bot read this file"
        size = file.get("size")
        if isinstance(size, int) and size > self.max_bytes:
            return TOO_LARGE
        url = file.get("url_private_download") or file.get("url_private")
        if not isinstance(url, str) or urlsplit(url).netloc not in self.hosts:
            return "not a file stored in Slack"
        return None


async def upload(client: AsyncWebClient, channel: str, thread_ts: str | None,
                 files: list[SandboxFile], comment: str = "") -> None:
    """Post the files into the thread (one upload call for all of them)."""
    if not files:
        return
    uploads = [{"file": f.data, "filename": f.name, "title": f.name} for f in files]
    kwargs: dict[str, Any] = {"file_uploads": uploads, "channel": channel}
    if thread_ts:
        kwargs["thread_ts"] = thread_ts
    if comment:
        kwargs["initial_comment"] = comment
    await client.files_upload_v2(**kwargs)


def upload_failed_text(files: list[SandboxFile]) -> str:
    names = ", ".join(f.name for f in files)
    return (f"I made {names} but Slack refused the upload (does the app have the files:write "
            "scope? reinstall it to grant it).")
