"""Read what chromadb really holds, behind the store's back."""

from __future__ import annotations

from typing import Any

import pytest
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection


def everything_in(client: ClientAPI) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every (document, metadata) of every collection, read behind the store's back."""
    dump: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for collection in client.list_collections():
        result = client.get_collection(collection.name).get(include=["documents", "metadatas"])
        documents = result["documents"] or []
        metadatas = result["metadatas"] or []
        dump[collection.name] = [
            (document or "", dict(metadata))
            for document, metadata in zip(documents, metadatas, strict=True)
        ]
    return dump


def count_upserts(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """The entries of each upsert to the collection `name` from now on, by any client of this
    process (a local chromadb write holds the GIL: how many there are matters)."""
    writes: list[int] = []
    upsert = Collection.upsert

    def counted(self: Collection, **entries: Any) -> None:
        if self.name == name:
            writes.append(len(entries["ids"]))
        upsert(self, **entries)

    monkeypatch.setattr(Collection, "upsert", counted)
    return writes
