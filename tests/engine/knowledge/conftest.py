"""Fixtures: the real chromadb on disk (tmp_path) and the real offline embeddings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest
import pytest_asyncio
from chromadb.api import ClientAPI
from chromadb.api.types import Documents, EmbeddingFunction
from chromadb.config import Settings

from engine.knowledge.embeddings import MiniLMEmbeddingFunction
from engine.knowledge.store import KnowledgeStore


@pytest.fixture(scope="session")
def embedding_function() -> MiniLMEmbeddingFunction:
    # One model load for the whole session (about a second).
    return MiniLMEmbeddingFunction()


@pytest.fixture
def chroma_path(tmp_path: Path) -> Path:
    return tmp_path / "chroma"


@pytest_asyncio.fixture
async def store(
    chroma_path: Path, embedding_function: EmbeddingFunction[Documents]
) -> KnowledgeStore:
    return await KnowledgeStore.open(embedding_function, chroma_path=chroma_path)


@pytest.fixture
def raw_client(chroma_path: Path, store: KnowledgeStore) -> Iterator[ClientAPI]:
    """A plain chromadb client on the same files, to inspect what is really stored."""
    yield chromadb.PersistentClient(
        path=str(chroma_path), settings=Settings(anonymized_telemetry=False)
    )
