"""Knowledge layer: learnings, tool recipes and past objectives in chromadb.

`store.KnowledgeStore` (the `KnowledgeStore` port's implementation) keeps each tenant's
entries private and, by privacy mode, shares anonymized copies; `embeddings` picks the
embedding function (offline by default, a litellm model when configured). The package itself
imports nothing heavy, so `records` can be used without loading chromadb.
"""
