"""Downloading a file a user shared, never more than a cap: the declared length is checked
first, then the stream is counted as it arrives and dropped past the cap, so a file whose
size lies (or an endless stream) costs at most `max_bytes` of memory and nothing on disk."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from engine.files.limits import MAX_FILE_BYTES, MB

CHUNK = 64 * 1024
TOO_LARGE = f"larger than {MAX_FILE_BYTES // MB} MB"


class DownloadRefused(Exception):
    """A download we stopped or the platform refused (`status`); the message is for the
    user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


async def capped_download(session: aiohttp.ClientSession, url: str, *,
                          headers: Mapping[str, str] | None = None,
                          max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The body at `url` (no redirects followed: a redirect is where a platform sends a
    request it won't serve). Raises DownloadRefused, aiohttp.ClientError or TimeoutError."""
    async with session.get(url, headers=headers or {}, allow_redirects=False) as response:
        if response.status != 200:
            raise DownloadRefused(f"the download was refused (HTTP {response.status})",
                                  response.status)
        if (response.content_length or 0) > max_bytes:
            raise DownloadRefused(TOO_LARGE)
        received = bytearray()
        async for chunk in response.content.iter_chunked(CHUNK):
            received += chunk
            if len(received) > max_bytes:  # the declared size lied: stop here
                raise DownloadRefused(TOO_LARGE + " (download stopped)")
        return bytes(received)
