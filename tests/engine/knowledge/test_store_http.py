"""The same store against a real chroma server (`chroma run`) on loopback: the CHROMA_URL path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.knowledge.embeddings import MiniLMEmbeddingFunction
from engine.knowledge.store import KnowledgeStore
from engine.types import PrivacyMode


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, server: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"chroma server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("chroma server did not start")


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-c", "from chromadb.cli.cli import app; app()",
        "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    environment = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    server = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.asyncio
async def test_store_over_http(
    chroma_url: str, embedding_function: MiniLMEmbeddingFunction
) -> None:
    store = await KnowledgeStore.open(embedding_function, chroma_url=chroma_url)
    await store.add_learning(
        "slack:THTTP1", "Use metric units, ask bob@corp.example", privacy_mode=PrivacyMode.FEDERATED
    )
    await store.add_learning("slack:THTTP2", "Private: reply in haiku")

    hits = await store.relevant_learnings(
        "slack:THTTP3", "which units?", privacy_mode=PrivacyMode.FEDERATED
    )
    assert [(hit.text, hit.shared) for hit in hits] == [("Use metric units, ask <email>", True)]

    assert await store.delete_tenant("slack:THTTP1") == 2
    assert (
        await store.relevant_learnings(
            "slack:THTTP3", "which units?", privacy_mode=PrivacyMode.FEDERATED
        )
        == []
    )
