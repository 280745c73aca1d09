"""Knowledge store latency at growing sizes, plus embedding recall.

    python -m bench.knowledge                     # 1k and 10k entries
    python -m bench.knowledge --sizes 1000 10000 100000
    python -m bench.knowledge --embedding local/hashed   # the no-model baseline

One embedded store (PersistentClient in a temp dir, the default embeddings)
grows to each size in turn; at each size the request-path calls are timed one
after the other: `add_learning` (federated, so it embeds and writes the private
entry and its anonymized shared copy) and `relevant_learnings` (federated: one
query embedding, the tenant's own entries plus the shared pool).

The fill goes in batches straight into the collections (the store has no bulk
API: learnings arrive one by one). Embedding 100k texts on 2 cores takes
longer than the rest together, so by default the fill reuses the vectors of
the 4,200 distinct synthetic sentences (entry i gets the vector of sentence
i mod 4,200, which differs only in its "(case i)" number); the embedding
throughput is measured and printed on its own. `--embed-fill` embeds every
filled entry instead.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from engine.knowledge.embeddings import make_embedding_function
from engine.knowledge.eval_set import recall_at_k
from engine.knowledge.store import LEARNINGS, SHARED_LEARNINGS, KnowledgeStore
from engine.types import PrivacyMode

Vectors = npt.NDArray[np.float32]
Embed = Callable[[Sequence[str]], Vectors]

TENANTS = 100
SHARED_EVERY = 3  # one entry in three also gets a shared copy during the fill

TOPICS = [
    "currency conversion", "unit conversion", "travel plans", "recipes", "SQL queries",
    "python scripts", "email drafts", "meeting notes", "calendar invites", "weather",
    "time zones", "translations", "summaries", "poems", "math homework", "invoices",
    "support tickets", "release notes", "job posts", "product names", "CSS layout",
    "shell commands", "regular expressions", "spreadsheets", "contracts", "tax questions",
    "fitness plans", "book reviews", "movie picks", "gift ideas",
]  # fmt: skip
ACTIONS = [
    "always show", "never omit", "start with", "end with", "keep", "double-check",
    "ask before changing", "explain briefly", "prefer", "avoid",
]  # fmt: skip
DETAILS = [
    "the units", "a one-line summary", "the sources", "bullet points", "a code block",
    "the time zone", "the exchange rate date", "a polite tone", "the final answer first",
    "metric units", "plain language", "a short example", "type hints", "the totals",
]  # fmt: skip


@dataclass(frozen=True)
class Row:
    entries: int
    fill_per_second: float
    insert_p50_ms: float
    insert_p95_ms: float
    query_p50_ms: float
    query_p95_ms: float


def synthetic_learning(index: int) -> str:
    topic = TOPICS[index % len(TOPICS)]
    action = ACTIONS[(index // len(TOPICS)) % len(ACTIONS)]
    detail = DETAILS[(index // (len(TOPICS) * len(ACTIONS))) % len(DETAILS)]
    return f"For {topic}, {action} {detail} (case {index})"


def tenant_of(index: int) -> str:
    return f"slack:TBENCH{index % TENANTS:04d}"


def metadata_for(index: int, *, shared: bool) -> dict[str, str | int | float | bool]:
    rng = random.Random(index)
    confidence, impact = rng.random(), rng.random()
    metadata: dict[str, str | int | float | bool] = {
        "domain": TOPICS[index % len(TOPICS)],
        "type": "prompt_rule",
        "confidence": confidence,
        "impact": impact,
        "score": confidence * impact,
        "timestamp": time.time(),
    }
    if shared:
        metadata["origin"] = f"bench-origin-{index % TENANTS}"
    else:
        metadata["tenant"] = tenant_of(index)
    return metadata


DISTINCT_SENTENCES = len(TOPICS) * len(ACTIONS) * len(DETAILS)


def fill(store: KnowledgeStore, start: int, stop: int, batch: int, vectors: Vectors | None) -> None:
    """Entries [start, stop) in batches. With `vectors` (one per distinct
    sentence) chromadb stores them as given; without, it embeds every entry."""
    learnings = store._collections[LEARNINGS]  # bulk path for the benchmark only
    shared = store._collections[SHARED_LEARNINGS]
    for first in range(start, stop, batch):
        indexes = list(range(first, min(first + batch, stop)))
        copies = [i for i in indexes if i % SHARED_EVERY == 0]
        for collection, chosen, is_shared in ((learnings, indexes, False), (shared, copies, True)):
            if not chosen:
                continue
            collection.add(
                ids=[f"bench-{'shared-' if is_shared else ''}{i}" for i in chosen],
                documents=[synthetic_learning(i) for i in chosen],
                metadatas=[metadata_for(i, shared=is_shared) for i in chosen],
                embeddings=None if vectors is None else vectors[[i % len(vectors) for i in chosen]],
            )


def embed_distinct_sentences(embed: Embed) -> tuple[Vectors, float]:
    """A vector per distinct synthetic sentence, and the embedding rate (texts/s)."""
    texts = [synthetic_learning(i) for i in range(DISTINCT_SENTENCES)]
    started = time.perf_counter()
    vectors = embed(texts)
    return vectors, len(texts) / (time.perf_counter() - started)


async def timed(calls: Sequence[Callable[[], Awaitable[object]]]) -> tuple[float, float]:
    """p50 and p95 in milliseconds, one call after the other."""
    durations = []
    for call in calls:
        started = time.perf_counter()
        await call()
        durations.append((time.perf_counter() - started) * 1000)
    p50, p95 = np.percentile(durations, [50, 95])
    return float(p50), float(p95)


async def measure(store: KnowledgeStore, entries: int, samples: int) -> tuple[float, ...]:
    rng = random.Random(entries)
    inserts = [
        lambda i=i: store.add_learning(
            tenant_of(i),
            f"New learning {entries}-{i}: {synthetic_learning(rng.randrange(10**6))}",
            privacy_mode=PrivacyMode.FEDERATED,
        )
        for i in range(samples)
    ]
    queries = [
        lambda i=i: store.relevant_learnings(
            tenant_of(i),
            f"how should I answer about {TOPICS[i % len(TOPICS)]}?",
            privacy_mode=PrivacyMode.FEDERATED,
            k=5,
        )
        for i in range(samples)
    ]
    return (*await timed(inserts), *await timed(queries))


async def run(
    sizes: list[int], samples: int, batch: int, embedding: str | None, embed_fill: bool
) -> None:
    console = Console()
    embedding_function = make_embedding_function(embedding)

    def embed(texts: Sequence[str]) -> Vectors:
        return np.asarray(embedding_function(list(texts)), dtype=np.float32)

    recall = recall_at_k(embed, k=5)
    console.print(f"embedding {embedding or 'local/minilm'}: recall@5 = {recall:.3f}")
    vectors, rate = await asyncio.to_thread(embed_distinct_sentences, embed)
    console.print(f"embedding throughput: {rate:,.0f} texts/s (batches, {len(vectors):,} texts)")

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as directory:
        store = await KnowledgeStore.open(embedding_function, chroma_path=Path(directory))
        filled = 0
        for size in sorted(sizes):
            started = time.perf_counter()
            await asyncio.to_thread(
                fill, store, filled, size, batch, None if embed_fill else vectors
            )
            fill_rate = (size - filled) / max(time.perf_counter() - started, 1e-9)
            filled = size
            insert_p50, insert_p95, query_p50, query_p95 = await measure(store, size, samples)
            row = Row(size, fill_rate, insert_p50, insert_p95, query_p50, query_p95)
            rows.append(row)
            console.print(table(rows[-1:], "so far"))
    title = f"knowledge store, {embedding or 'local/minilm'}, recall@5 {recall:.3f}, "
    title += f"embedding {rate:,.0f} texts/s, fill {'embedded' if embed_fill else 'precomputed'}"
    console.print(table(rows, title))


def table(rows: list[Row], title: str) -> Table:
    result = Table(title=title)
    for header in (
        "entries", "fill entries/s", "add_learning p50 ms", "p95 ms",
        "relevant_learnings p50 ms", "p95 ms",
    ):  # fmt: skip
        result.add_column(header, justify="right")
    for row in rows:
        result.add_row(
            f"{row.entries:,}",
            f"{row.fill_per_second:,.0f}",
            f"{row.insert_p50_ms:.1f}",
            f"{row.insert_p95_ms:.1f}",
            f"{row.query_p50_ms:.1f}",
            f"{row.query_p95_ms:.1f}",
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--samples", type=int, default=100, help="timed calls per size and kind")
    parser.add_argument("--batch", type=int, default=1_000, help="fill batch size")
    parser.add_argument("--embedding", default=None, help="EMBEDDING_MODEL value to use")
    parser.add_argument(
        "--embed-fill", action="store_true", help="embed every filled entry (slow at 100k)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.sizes, args.samples, args.batch, args.embedding, args.embed_fill))


if __name__ == "__main__":
    main()
