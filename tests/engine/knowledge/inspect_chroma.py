"""Read what chromadb really holds, behind the store's back."""

from __future__ import annotations

from typing import Any

from chromadb.api import ClientAPI


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
