"""The knowledge store: learnings, tool recipes and past objectives.

Five chromadb collections:

    learnings, tool_recipes, objectives   private: every entry has a `tenant`
                                          and every read filters on it
    shared_learnings, shared_tool_recipes anonymized copies only; no `tenant`,
                                          an `origin` (keyed hash of the tenant)
                                          instead, so `delete_tenant` finds them

Privacy mode per tenant: isolated (nothing leaves, nothing shared comes in),
federated (learnings are shared and shared learnings are read), collective
(tool recipes too). Every metadata record carries tenant (or origin), domain,
type, confidence, impact, timestamp and score (= confidence * impact).

chromadb is synchronous, so each public method runs its chromadb work in one
worker thread (`asyncio.to_thread`), embedding included.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction
from chromadb.config import Settings

from engine.knowledge.anonymize import anonymize
from engine.knowledge.embeddings import embedding_identity
from engine.knowledge.records import (
    CrossDomainPattern,
    KnowledgeHit,
    NewLearning,
    ObjectiveContext,
    PastObjective,
    RatedObjective,
)
from engine.types import PrivacyMode

LEARNINGS = "learnings"
TOOL_RECIPES = "tool_recipes"
OBJECTIVES = "objectives"
SHARED_LEARNINGS = "shared_learnings"
SHARED_TOOL_RECIPES = "shared_tool_recipes"
PRIVATE_COLLECTIONS = (LEARNINGS, TOOL_RECIPES, OBJECTIVES)
SHARED_COLLECTIONS = (SHARED_LEARNINGS, SHARED_TOOL_RECIPES)

BAD_RATING = 2  # ratings at or below this are failures worth remembering
NEAREST_FETCHED = 10  # an objective's neighbours read at once (see _objective_context)
HOLDINGS_TTL_S = 60.0  # how long a tenant seen to hold entries is not checked again

Where: TypeAlias = dict[str, Any]
Metadata: TypeAlias = dict[str, str | int | float | bool]
Row: TypeAlias = tuple[str, str, Mapping[str, Any], float]  # id, document, metadata, distance


class EmbeddingMismatchError(RuntimeError):
    """The store was filled with another embedding model than the one given."""


class KnowledgeStore:
    """Tenant-scoped vector memory. Open it with `await KnowledgeStore.open(...)`."""

    def __init__(
        self,
        client: ClientAPI,
        embedding_function: EmbeddingFunction[Documents],
        *,
        origin_key: bytes,
    ) -> None:
        self._client = client
        self._embed = embedding_function
        self._origin_key = origin_key
        self._collections: dict[str, Collection] = {}
        self._holdings = _Holdings()

    # --- lifecycle ---------------------------------------------------------

    @classmethod
    async def open(
        cls,
        embedding_function: EmbeddingFunction[Documents],
        *,
        chroma_path: Path | None = None,
        chroma_url: str | None = None,
        origin_key: bytes | str = b"evobot-knowledge-origin",
    ) -> KnowledgeStore:
        """Connect (or create the on-disk store) and make sure the collections exist.

        `chroma_url` ("http://host:8000") selects a chroma server; otherwise an
        embedded PersistentClient lives under `chroma_path` (the caller passes
        DATA_DIR/chroma). `origin_key` keys the hash that stands for a tenant in
        shared entries; keep it stable (deletion finds shared copies by it) and,
        in production, secret (tenant ids are guessable, a keyed hash is not).
        """
        if (chroma_path is None) == (chroma_url is None):
            raise ValueError("give exactly one of chroma_path and chroma_url")
        key = origin_key.encode() if isinstance(origin_key, str) else origin_key
        client = await asyncio.to_thread(_make_client, chroma_path, chroma_url)
        store = cls(client, embedding_function, origin_key=key)
        await asyncio.to_thread(store._open_collections)
        return store

    def _open_collections(self) -> None:
        identity = embedding_identity(self._embed)
        for name in PRIVATE_COLLECTIONS + SHARED_COLLECTIONS:
            try:
                collection = self._client.get_or_create_collection(
                    name,
                    embedding_function=self._embed,  # type: ignore[arg-type]
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"embedding": identity},
                )
            except ValueError as error:  # chromadb refuses another embedding function
                raise EmbeddingMismatchError(f"collection {name!r}: {error}") from error
            stored = (collection.metadata or {}).get("embedding")
            if stored != identity:
                raise EmbeddingMismatchError(
                    f"collection {name!r} holds {stored} vectors, not {identity}: "
                    "set the embedding model back or start a new store"
                )
            self._collections[name] = collection

    # --- writing -----------------------------------------------------------

    async def add_learning(
        self,
        tenant: str,
        text: str,
        *,
        domain: str = "general",
        type: str = "prompt_rule",
        confidence: float = 0.5,
        impact: float = 0.5,
        privacy_mode: PrivacyMode | str = PrivacyMode.ISOLATED,
        names: Sequence[str] = (),
    ) -> str:
        """Store a learned pattern for `tenant`; returns its id.

        Federated and collective tenants also contribute an anonymized copy to
        the shared pool; `names` are people's names to strip from that copy.
        """
        learning = NewLearning(text, domain, type, confidence, impact)
        ids = await self.add_learnings(tenant, [learning], privacy_mode=privacy_mode, names=names)
        return ids[0]

    async def add_learnings(
        self,
        tenant: str,
        learnings: Sequence[NewLearning],
        *,
        privacy_mode: PrivacyMode | str = PrivacyMode.ISOLATED,
        names: Sequence[str] = (),
    ) -> list[str]:
        """`add_learning` for several at once: one write per collection (a chromadb write
        holds the GIL for milliseconds, whatever its size); their ids, in order."""
        mode = PrivacyMode(privacy_mode)
        share = mode in (PrivacyMode.FEDERATED, PrivacyMode.COLLECTIVE)
        entries = [
            (x.text, _entry_metadata(x.domain, x.type, x.confidence, x.impact)) for x in learnings
        ]
        return await asyncio.to_thread(
            self._add, LEARNINGS, SHARED_LEARNINGS if share else None, tenant, entries, names
        )

    async def add_tool_recipe(
        self,
        tenant: str,
        text: str,
        *,
        tool_name: str,
        domain: str = "general",
        type: str = "tool_recipe",
        confidence: float = 0.5,
        impact: float = 0.5,
        privacy_mode: PrivacyMode | str = PrivacyMode.ISOLATED,
        names: Sequence[str] = (),
    ) -> str:
        """Store how a tool solved something; shared (anonymized) only in collective mode."""
        share = PrivacyMode(privacy_mode) is PrivacyMode.COLLECTIVE
        metadata = _entry_metadata(domain, type, confidence, impact)
        metadata["tool_name"] = tool_name
        ids = await asyncio.to_thread(
            self._add,
            TOOL_RECIPES,
            SHARED_TOOL_RECIPES if share else None,
            tenant,
            [(text, metadata)],
            names,
        )
        return ids[0]

    async def record_objective(
        self,
        tenant: str,
        objective: str,
        *,
        outcome_rating: int,
        lesson: str = "",
        domain: str = "general",
    ) -> str:
        """Remember an objective and how it was rated (never shared).

        The same objective recorded again replaces the earlier record: the
        latest outcome is the one that counts.
        """
        rated = RatedObjective(objective, outcome_rating, lesson, domain)
        return (await self.record_objectives(tenant, [rated]))[0]

    async def record_objectives(
        self, tenant: str, objectives: Sequence[RatedObjective]
    ) -> list[str]:
        """`record_objective` for several at once, in one write; their ids, in order."""
        entries = [(x.objective, _objective_metadata(x)) for x in objectives]
        return await asyncio.to_thread(self._add, OBJECTIVES, None, tenant, entries, ())

    def _add(
        self,
        private: str,
        shared: str | None,
        tenant: str,
        entries: Sequence[tuple[str, Metadata]],
        names: Sequence[str],
    ) -> list[str]:
        """Upsert `entries` (text, metadata) for `tenant` in one chromadb write, and their
        anonymized copies in another; the entries' ids, in order."""
        _check_tenant(tenant)
        if any(not text.strip() for text, _ in entries):
            raise ValueError("empty text")
        ids = [_entry_id(tenant, private, str(metadata["domain"]), text)
               for text, metadata in entries]
        # upsert: the same entry written again refreshes it instead of duplicating it (and
        # within one write, chromadb takes an id once: the last of the same text counts)
        latest = dict(zip(ids, entries, strict=True))
        if latest:
            self._collections[private].upsert(
                ids=list(latest),
                documents=[text for text, _ in latest.values()],
                metadatas=[{**metadata, "tenant": tenant} for _, metadata in latest.values()],
            )
            self._holdings.found(private, tenant)
        if shared is not None and latest:
            self._add_shared_copies(shared, tenant, list(latest.values()), names)
        return ids

    def _add_shared_copies(
        self, shared: str, tenant: str, entries: list[tuple[str, Metadata]],
        names: Sequence[str],
    ) -> None:
        origin = self._origin(tenant)
        copies: dict[str, tuple[str, Metadata]] = {}
        for text, metadata in entries:
            clean_text = anonymize(text, names=names)
            clean = dict(metadata)
            for key in ("domain", "tool_name"):
                if key in clean:
                    clean[key] = anonymize(str(clean[key]), names=names)
            clean["origin"] = origin
            shared_id = _entry_id(origin, shared, str(clean["domain"]), clean_text)
            copies[shared_id] = (clean_text, clean)
        self._collections[shared].upsert(
            ids=list(copies),
            documents=[text for text, _ in copies.values()],
            metadatas=[metadata for _, metadata in copies.values()],
        )

    # --- reading -----------------------------------------------------------

    async def relevant_learnings(
        self,
        tenant: str,
        query: str,
        *,
        privacy_mode: PrivacyMode | str = PrivacyMode.ISOLATED,
        k: int = 5,
    ) -> list[KnowledgeHit]:
        """The k learnings nearest to `query`: the tenant's own, plus shared
        ones unless the tenant is isolated. Never another tenant's private ones."""
        read_shared = PrivacyMode(privacy_mode) is not PrivacyMode.ISOLATED
        shared = SHARED_LEARNINGS if read_shared else None
        return await asyncio.to_thread(self._nearest, LEARNINGS, shared, tenant, query, k)

    async def relevant_tool_recipes(
        self,
        tenant: str,
        query: str,
        *,
        privacy_mode: PrivacyMode | str = PrivacyMode.ISOLATED,
        k: int = 5,
    ) -> list[KnowledgeHit]:
        """The k nearest tool recipes: own, plus shared ones in collective mode."""
        read_shared = PrivacyMode(privacy_mode) is PrivacyMode.COLLECTIVE
        shared = SHARED_TOOL_RECIPES if read_shared else None
        return await asyncio.to_thread(self._nearest, TOOL_RECIPES, shared, tenant, query, k)

    def _nearest(
        self, private: str, shared: str | None, tenant: str, query: str, k: int
    ) -> list[KnowledgeHit]:
        _check_tenant(tenant)
        if not self._holds_any(private, tenant) and (
            shared is None or not self._collections[shared].count()
        ):
            return []  # nothing to find: no embedding to compute
        vector = self._embed([query])[0]  # once, for both collections
        rows = self._query_rows(private, vector, {"tenant": tenant}, k)
        hits = [_hit(*row, shared=False) for row in rows]
        if shared is not None:
            hits += [
                _hit(*row, shared=True) for row in self._others_rows(shared, vector, tenant, k)
            ]
        return _best_distinct(hits, k)

    def _others_rows(self, name: str, vector: Any, tenant: str, k: int) -> list[Row]:
        """The k nearest shared entries that did not come from `tenant`.

        Its own shared copies would only repeat its private entries. On a large
        pool an unfiltered query is far faster than a `$ne` filter (3 ms against
        90 ms at 34k entries), so fetch extra and drop them; only when the
        tenant's own copies crowd out too many is the filter needed.
        """
        own = self._origin(tenant)
        fetched = 2 * k + 8
        rows = self._query_rows(name, vector, None, fetched)
        others = [row for row in rows if row[2].get("origin") != own]
        if len(others) >= k or len(rows) < fetched:
            return others[:k]
        return self._query_rows(name, vector, {"origin": {"$ne": own}}, k)

    def _holds_any(self, name: str, tenant: str) -> bool:
        """Whether the private collection holds anything of the tenant's (an indexed
        metadata read, a fraction of an embedding's cost; not read again for a while once
        it found something — `_Holdings`)."""
        if self._holdings.known(name, tenant):
            return True
        found = bool(self._collections[name].get(where={"tenant": tenant}, limit=1,
                                                  include=[])["ids"])
        if found:
            self._holdings.found(name, tenant)
        return found

    def _query_rows(self, name: str, vector: Any, where: Where | None, n: int) -> list[Row]:
        result = self._collections[name].query(
            query_embeddings=[vector],
            n_results=n,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        return list(
            zip(
                result["ids"][0],
                [document or "" for document in (result["documents"] or [[]])[0]],
                (result["metadatas"] or [[]])[0],
                [float(distance) for distance in (result["distances"] or [[]])[0]],
                strict=True,
            )
        )

    async def objective_context(self, tenant: str, objective: str, *, k: int = 3,
                                learnings_beyond: float | None = None) -> ObjectiveContext:
        """How far the nearest recorded objective is (novelty), the similar ones that went
        badly (their lessons) and, for an objective novel beyond `learnings_beyond`, the
        tenant's own k nearest learnings — one embedding and one thread hop for all three."""
        return await asyncio.to_thread(
            self._objective_context, tenant, objective, k, learnings_beyond
        )

    def _objective_context(self, tenant: str, objective: str, k: int,
                           learnings_beyond: float | None) -> ObjectiveContext:
        """The nearest few of the tenant's objectives answer the first two questions when
        they hold k bad ones, or are all there is; otherwise a second query finds the k
        nearest bad."""
        _check_tenant(tenant)
        wanted = (OBJECTIVES,) if learnings_beyond is None else (OBJECTIVES, LEARNINGS)
        if not any(self._holds_any(name, tenant) for name in wanted):
            return ObjectiveContext(None, ())  # a new tenant: no embedding to compute
        vector = self._embed([objective])[0]
        fetched = max(k, NEAREST_FETCHED)
        nearest = self._query_rows(OBJECTIVES, vector, {"tenant": tenant}, fetched)
        bad_rows = [row for row in nearest if _rated_bad(row[2])][:k]
        if len(bad_rows) < k and len(nearest) == fetched:
            bad_only: Where = {"$and": [{"tenant": tenant}, {"rating": {"$lte": BAD_RATING}}]}
            bad_rows = self._query_rows(OBJECTIVES, vector, bad_only, k)
        context = ObjectiveContext(nearest[0][3] if nearest else None,
                                   tuple(_past_objective(*row) for row in bad_rows))
        if learnings_beyond is None or not context.novel(learnings_beyond):
            return context
        rows = self._query_rows(LEARNINGS, vector, {"tenant": tenant}, k)
        own = _best_distinct([_hit(*row, shared=False) for row in rows], k)
        return dataclasses.replace(context, own_learnings=tuple(own))

    async def group_similar(self, texts: Sequence[str], *, max_distance: float = 0.35
                            ) -> list[list[int]]:
        """Groups of similar texts (indices into `texts`, largest group first): each text joins
        the first group whose first member is within `max_distance` (cosine)."""
        if not texts:
            return []
        return await asyncio.to_thread(self._group_similar, list(texts), max_distance)

    def _group_similar(self, texts: list[str], max_distance: float) -> list[list[int]]:
        vectors = np.asarray(self._embed(texts), dtype=float)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        groups: list[list[int]] = []
        for index, vector in enumerate(vectors):
            home = next((g for g in groups if 1.0 - float(vectors[g[0]] @ vector)
                         <= max_distance), None)
            if home is None:
                groups.append([index])
            else:
                home.append(index)
        return sorted(groups, key=len, reverse=True)

    async def bootstrap_rules(
        self,
        tenant: str,
        *,
        privacy_mode: PrivacyMode | str,
        k: int = 5,
        domain: str | None = None,
        min_score: float = 0.0,
    ) -> list[KnowledgeHit]:
        """The best shared patterns (by confidence * impact) for a new tenant.

        Empty for isolated tenants. They are candidates: the caller still runs
        them through validation before any becomes a rule.
        """
        if PrivacyMode(privacy_mode) is PrivacyMode.ISOLATED:
            return []
        return await asyncio.to_thread(self._bootstrap_rules, tenant, k, domain, min_score)

    def _bootstrap_rules(
        self, tenant: str, k: int, domain: str | None, min_score: float
    ) -> list[KnowledgeHit]:
        _check_tenant(tenant)
        conditions: list[Where] = [
            {"origin": {"$ne": self._origin(tenant)}},
            {"score": {"$gte": min_score}},
        ]
        if domain is not None:
            conditions.append({"domain": domain})
        result = self._collections[SHARED_LEARNINGS].get(
            where={"$and": conditions}, include=["documents", "metadatas"]
        )
        hits = [
            _hit(entry_id, document, metadata, shared=True)
            for entry_id, document, metadata in zip(
                result["ids"], result["documents"] or [], result["metadatas"] or [], strict=True
            )
        ]
        hits.sort(key=lambda hit: (hit.score, hit.timestamp), reverse=True)
        return _distinct(hits)[:k]

    async def cross_domain_patterns(
        self, min_domains: int = 3, *, similarity: float = 0.8
    ) -> list[CrossDomainPattern]:
        """Clusters of similar shared learnings that appear in `min_domains`+ domains.

        Greedy single pass: each learning (best score first) joins the first
        cluster whose representative is at least `similarity` (cosine) close,
        or starts a new one. Meant for periodic analysis, not the request path.
        """
        return await asyncio.to_thread(self._cross_domain_patterns, min_domains, similarity)

    def _cross_domain_patterns(
        self, min_domains: int, similarity: float
    ) -> list[CrossDomainPattern]:
        result = self._collections[SHARED_LEARNINGS].get(
            include=["documents", "metadatas", "embeddings"]
        )
        documents = result["documents"] or []
        metadatas: list[Mapping[str, Any]] = list(result["metadatas"] or [])
        if not documents:
            return []
        vectors = _unit_rows(np.asarray(result["embeddings"], dtype=np.float32))
        order = sorted(range(len(documents)), key=lambda i: -float(metadatas[i].get("score", 0.0)))
        clusters = _greedy_clusters(vectors, order, similarity)
        patterns = [_pattern(members, documents, metadatas) for members in clusters]
        found = [pattern for pattern in patterns if len(pattern.domains) >= min_domains]
        found.sort(key=lambda pattern: (len(pattern.domains), pattern.members), reverse=True)
        return found

    # --- tenant data rights --------------------------------------------------

    async def export_tenant(self, tenant: str) -> dict[str, Any]:
        """Everything stored for `tenant`, its shared (anonymized) copies included."""
        return await asyncio.to_thread(self._export_tenant, tenant)

    def _export_tenant(self, tenant: str) -> dict[str, Any]:
        _check_tenant(tenant)
        export: dict[str, Any] = {"tenant": tenant}
        for name in PRIVATE_COLLECTIONS:
            export[name] = self._entries(name, {"tenant": tenant})
        for name in SHARED_COLLECTIONS:
            export[name] = self._entries(name, {"origin": self._origin(tenant)})
        return export

    def _entries(self, name: str, where: Where) -> list[dict[str, Any]]:
        result = self._collections[name].get(where=where, include=["documents", "metadatas"])
        return [
            {"id": entry_id, "text": document, "metadata": dict(metadata)}
            for entry_id, document, metadata in zip(
                result["ids"], result["documents"] or [], result["metadatas"] or [], strict=True
            )
        ]

    async def delete_tenant(self, tenant: str) -> int:
        """Remove every vector of `tenant`, shared copies included; returns how many."""
        return await asyncio.to_thread(self._delete_tenant, tenant)

    def _delete_tenant(self, tenant: str) -> int:
        _check_tenant(tenant)
        self._holdings.forget(tenant)
        deleted = 0
        for name in PRIVATE_COLLECTIONS:
            deleted += self._delete_where(name, {"tenant": tenant})
        for name in SHARED_COLLECTIONS:
            deleted += self._delete_where(name, {"origin": self._origin(tenant)})
        return deleted

    async def withdraw_shared(self, tenant: str, *, privacy_mode: PrivacyMode | str) -> int:
        """After a privacy change, remove the tenant's shared copies the new mode
        no longer allows (isolated: all; federated: tool recipes). Returns how many."""
        mode = PrivacyMode(privacy_mode)
        withdrawn = {
            PrivacyMode.ISOLATED: SHARED_COLLECTIONS,
            PrivacyMode.FEDERATED: (SHARED_TOOL_RECIPES,),
            PrivacyMode.COLLECTIVE: (),
        }[mode]
        return await asyncio.to_thread(self._withdraw, tenant, withdrawn)

    def _withdraw(self, tenant: str, collections: Sequence[str]) -> int:
        _check_tenant(tenant)
        origin = {"origin": self._origin(tenant)}
        return sum(self._delete_where(name, origin) for name in collections)

    def _delete_where(self, name: str, where: Where) -> int:
        collection = self._collections[name]
        ids = collection.get(where=where, include=[])["ids"]
        batch = self._client.get_max_batch_size()
        for start in range(0, len(ids), batch):
            collection.delete(ids=ids[start : start + batch])
        return len(ids)

    async def count(self) -> dict[str, int]:
        """Entries per collection (all tenants): for status pages and benchmarks."""
        return await asyncio.to_thread(
            lambda: {name: c.count() for name, c in self._collections.items()}
        )

    # --- helpers -------------------------------------------------------------

    def _origin(self, tenant: str) -> str:
        """A keyed, one-way stand-in for the tenant in shared entries."""
        return hmac.new(self._origin_key, tenant.encode(), hashlib.sha256).hexdigest()[:32]


class _Holdings:
    """The private collections a tenant was lately seen to hold entries in, so that a tenant
    with history is not checked again before every lookup. An entry expires after
    HOLDINGS_TTL_S (an idle tenant costs nothing); entries are removed only when the tenant
    is deleted, and a deletion by another process in that time costs one embedding that
    finds nothing — never a wrong answer."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}  # (collection, tenant) → when
        self._swept_at = time.monotonic()

    def known(self, name: str, tenant: str) -> bool:
        seen = self._seen.get((name, tenant))
        return seen is not None and time.monotonic() - seen < HOLDINGS_TTL_S

    def found(self, name: str, tenant: str) -> None:
        now = time.monotonic()
        if now - self._swept_at > HOLDINGS_TTL_S:  # swept once a TTL, not on every call
            self._seen = {key: at for key, at in self._seen.items()
                          if now - at < HOLDINGS_TTL_S}
            self._swept_at = now
        self._seen[(name, tenant)] = now

    def forget(self, tenant: str) -> None:
        self._seen = {key: at for key, at in self._seen.items() if key[1] != tenant}


def _make_client(chroma_path: Path | None, chroma_url: str | None) -> ClientAPI:
    settings = Settings(anonymized_telemetry=False)
    if chroma_url is not None:
        url = urlsplit(chroma_url)
        ssl = url.scheme == "https"
        port = url.port or (443 if ssl else 8000)
        return chromadb.HttpClient(
            host=url.hostname or "localhost", port=port, ssl=ssl, settings=settings
        )
    assert chroma_path is not None
    chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(chroma_path), settings=settings)


def _check_tenant(tenant: str) -> None:
    # An empty tenant would make `where={"tenant": ""}` a shared bucket.
    if not tenant or not tenant.strip():
        raise ValueError("tenant is required")


def _entry_metadata(domain: str, type: str, confidence: float, impact: float) -> Metadata:
    for label, value in (("confidence", confidence), ("impact", impact)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{label} must be within 0..1, not {value}")
    return {
        "domain": domain or "general",
        "type": type,
        "confidence": float(confidence),
        "impact": float(impact),
        "score": float(confidence) * float(impact),
        "timestamp": time.time(),
    }


def _objective_metadata(rated: RatedObjective) -> Metadata:
    if not 1 <= rated.rating <= 5:
        raise ValueError(f"outcome_rating must be 1-5, not {rated.rating}")
    metadata = _entry_metadata(rated.domain, "objective", 1.0, 1.0)
    return metadata | {
        "rating": rated.rating, "outcome": _outcome(rated.rating), "lesson": rated.lesson,
    }


def _entry_id(owner: str, collection: str, domain: str, text: str) -> str:
    # Deterministic: the same text in the same scope is one entry, not many.
    payload = "\x1f".join((owner, collection, domain, text.strip()))
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _outcome(rating: int) -> str:
    if rating <= BAD_RATING:
        return "bad"
    return "mixed" if rating == 3 else "good"


def _hit(
    entry_id: str,
    document: str | None,
    metadata: Mapping[str, Any],
    distance: float | None = None,
    *,
    shared: bool,
) -> KnowledgeHit:
    return KnowledgeHit(
        id=entry_id,
        text=document or "",
        domain=str(metadata.get("domain", "general")),
        type=str(metadata.get("type", "")),
        confidence=float(metadata.get("confidence", 0.0)),
        impact=float(metadata.get("impact", 0.0)),
        timestamp=float(metadata.get("timestamp", 0.0)),
        shared=shared,
        distance=distance,
        tool_name=str(metadata.get("tool_name", "")),
    )


def _rated_bad(metadata: Mapping[str, Any]) -> bool:
    rating = metadata.get("rating")
    return isinstance(rating, int) and rating <= BAD_RATING


def _past_objective(
    entry_id: str, document: str | None, metadata: Mapping[str, Any], distance: float
) -> PastObjective:
    return PastObjective(
        id=entry_id,
        text=document or "",
        domain=str(metadata.get("domain", "general")),
        rating=int(metadata.get("rating", 0)),
        outcome=str(metadata.get("outcome", "")),
        lesson=str(metadata.get("lesson", "")),
        timestamp=float(metadata.get("timestamp", 0.0)),
        distance=distance,
    )


def _distinct(hits: list[KnowledgeHit]) -> list[KnowledgeHit]:
    """First occurrence of each text (case-insensitive), order kept."""
    seen: set[str] = set()
    kept: list[KnowledgeHit] = []
    for hit in hits:
        key = " ".join(hit.text.lower().split())
        if key not in seen:
            seen.add(key)
            kept.append(hit)
    return kept


def _best_distinct(hits: list[KnowledgeHit], k: int) -> list[KnowledgeHit]:
    # Own entries win ties with shared ones: they were learned from this tenant.
    hits = sorted(hits, key=lambda hit: (hit.distance or 0.0, hit.shared))
    return _distinct(hits)[:k]


def _unit_rows(matrix: np.ndarray[Any, np.dtype[np.float32]]) -> np.ndarray[Any, Any]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


def _greedy_clusters(
    vectors: np.ndarray[Any, Any], order: list[int], similarity: float
) -> list[list[int]]:
    representatives: list[int] = []  # index of each cluster's first (best) member
    clusters: list[list[int]] = []
    for index in order:
        if representatives:
            scores = vectors[representatives] @ vectors[index]
            best = int(np.argmax(scores))
            if scores[best] >= similarity:
                clusters[best].append(index)
                continue
        representatives.append(index)
        clusters.append([index])
    return clusters


def _pattern(
    members: list[int], documents: Sequence[str | None], metadatas: Sequence[Mapping[str, Any]]
) -> CrossDomainPattern:
    member_meta = [metadatas[i] for i in members]
    return CrossDomainPattern(
        text=documents[members[0]] or "",
        domains=tuple(sorted({str(m.get("domain", "general")) for m in member_meta})),
        members=len(members),
        origins=len({str(m.get("origin", "")) for m in member_meta}),
        mean_confidence=float(np.mean([float(m.get("confidence", 0.0)) for m in member_meta])),
        mean_impact=float(np.mean([float(m.get("impact", 0.0)) for m in member_meta])),
    )
