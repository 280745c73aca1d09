"""Knowledge layer (DESIGN §8): learnings, tool recipes and past objectives in chromadb.

`KnowledgeStore` keeps each tenant's entries private and, by privacy mode,
shares anonymized copies; `make_embedding_function` picks the embeddings
(offline by default, a litellm model when configured).
"""

from engine.knowledge.anonymize import anonymize
from engine.knowledge.embeddings import (
    EmbeddingUnavailableError,
    make_embedding_function,
)
from engine.knowledge.records import CrossDomainPattern, KnowledgeHit, PastObjective
from engine.knowledge.store import EmbeddingMismatchError, KnowledgeStore

__all__ = [
    "CrossDomainPattern",
    "EmbeddingMismatchError",
    "EmbeddingUnavailableError",
    "KnowledgeHit",
    "KnowledgeStore",
    "PastObjective",
    "anonymize",
    "make_embedding_function",
]
