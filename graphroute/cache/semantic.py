"""An optional semantic response cache: a stored answer for a near-duplicate prompt.

Off by default, because an embedding says two texts are *about* the same thing, not that they
ask the same thing: "Is the Pacific the largest ocean?" and "Is the Pacific not the largest
ocean?" embed almost identically. So a stored answer is returned only when all of these hold:

* same node, same model and parameters, and same prompt template (every message but the final
  user text identical) — the scope;
* cosine similarity of the user texts ≥ ``threshold``;
* the wording guard passes: the same negations, the same numbers and proper names, no
  polarity word (larger/smaller, before/after, ...) on one side only, and the words both texts
  share in the same order (so "convert miles to km" never answers "convert km to miles").

The guard is deliberately conservative: a reworded question that reorders its words misses
and costs a model call, never a wrong answer. The encoder is injectable (anything with the
``graphroute.pillars.encoders.Encoder`` shape); the default is MiniLM from the semantic extra.
Stored per entry: the vector, the text's word sequence (for the guard) and the answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.outputs import Generation

from graphroute.cache.keys import RequestIdentity
from graphroute.cache.responses import decode_generations, encode_generations
from graphroute.errors import ConfigError
from graphroute.paths import data_dir

NEGATIONS = frozenset({"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "nowhere"})
POLARITY = frozenset(
    """
    larger smaller bigger largest smallest biggest more less most least higher lower highest lowest
    before after above below over under increase decrease increases decreases rise fall maximum minimum
    max min first last best worst better worse older younger oldest youngest earlier later earliest
    latest true false cheaper cheapest expensive faster slower fastest slowest longer shorter longest
    shortest heavier lighter warmer colder hotter cooler north south east west left right up down inside
    outside positive negative add subtract plus minus buy sell win lose start end import export
    """.split()  # noqa: SIM905 - a word list reads best as text
)
STOPWORDS = frozenset(
    """
    a an the is are was were be been being am do does did of in on at for with by about as it its this
    that these those what which who whom whose how why when where please can could would should will
    shall may might must i you he she we they me my your our their and or but if then so than there here
    just also very tell me give
    """.split()  # noqa: SIM905 - a word list reads best as text
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Wording:
    """The parts of a question the guard compares."""

    words: tuple[str, ...]  # lower-cased, negations expanded
    names: frozenset[str]  # numbers and capitalised words that do not start a sentence

    @classmethod
    def of(cls, text: str) -> Wording:
        expanded = re.sub(r"(?i)\bcannot\b", "can not", text)
        expanded = re.sub(r"(?i)n't\b", " not", expanded)
        words: list[str] = []
        names: set[str] = set()
        sentence_start = True
        for match in _WORD.finditer(expanded):
            token = match.group()
            lowered = token.lower().removesuffix("'s")
            if token[0].isdigit() or (token[0].isupper() and not sentence_start):
                names.add(lowered)
            words.append(lowered)
            following = expanded[match.end() : match.end() + 2]
            sentence_start = bool(re.match(r"\s*[.?!]", following))
        return cls(tuple(words), frozenset(names))

    @property
    def negations(self) -> int:
        return sum(1 for word in self.words if word in NEGATIONS)

    @property
    def content(self) -> list[str]:
        return [word for word in self.words if word not in STOPWORDS and word not in NEGATIONS]


def same_question(a: Wording, b: Wording) -> str | None:
    """``None`` if ``b`` may share ``a``'s answer; otherwise why not."""
    if a.negations != b.negations:
        return "different negation"
    if a.names != b.names:
        return "different numbers or names"
    one_sided = set(a.words) ^ set(b.words)
    if flipped := sorted(one_sided & POLARITY):
        return f"polarity word on one side only: {', '.join(flipped)}"
    shared = set(a.content) & set(b.content)
    order_a = list(dict.fromkeys(word for word in a.content if word in shared))
    order_b = list(dict.fromkeys(word for word in b.content if word in shared))
    if order_a != order_b:
        return "shared words in a different order (a reversed question)"
    return None


@dataclass(frozen=True)
class SemanticHit:
    generations: list[Generation]
    similarity: float


class SemanticCache:
    """Near-duplicate prompts answered from stored answers, within one node and template.

    Usage::

        cache = SemanticCache(encoder=MiniLMEncoder(), threshold=0.9)
        optimize(graph, cache=CacheConfig(semantic=cache))
    """

    def __init__(
        self,
        encoder: Any = None,
        *,
        threshold: float = 0.9,
        path: Path | str | None = None,
        max_entries: int = 256,
        ttl: float | None = None,
    ) -> None:
        import diskcache

        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"semantic cache threshold must be in (0, 1], got {threshold}")
        self._encoder = encoder
        self.threshold = threshold
        self.max_entries = max_entries
        self.ttl = ttl
        self.path = Path(path).expanduser() if path is not None else data_dir() / "cache" / "semantic"
        self.path.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(self.path), timeout=60)
        self._lock = threading.Lock()

    @property
    def encoder(self) -> Any:
        """The injected encoder, or the default MiniLM one, loaded on first use."""
        with self._lock:
            if self._encoder is None:
                from graphroute.pillars.encoders import default_encoder

                self._encoder = default_encoder()
            return self._encoder

    def _scope(self, request: RequestIdentity) -> str:
        return "scope:" + hashlib.sha256(request.template.encode()).hexdigest()

    def _vector(self, text: str) -> np.ndarray:
        return np.asarray(self.encoder.encode([text])[0], dtype=np.float32)

    def lookup(self, request: RequestIdentity) -> SemanticHit | None:
        """The best stored answer in the request's scope that passes threshold and guard."""
        if not request.text:
            return None
        entries = self._cache.get(self._scope(request))
        if not entries:
            return None
        query = Wording.of(request.text)
        vector = self._vector(request.text)
        best: tuple[float, str] | None = None
        for entry in json.loads(entries):
            stored = np.frombuffer(bytes.fromhex(entry["vector"]), dtype=np.float32)
            similarity = float(vector @ stored)
            if similarity < self.threshold or (best is not None and similarity <= best[0]):
                continue
            wording = Wording(tuple(entry["words"]), frozenset(entry["names"]))
            if same_question(query, wording) is None:
                best = (similarity, entry["answer"])
        if best is None:
            return None
        return SemanticHit(decode_generations(best[1]), best[0])

    def update(self, request: RequestIdentity, generations: list[Generation]) -> None:
        if not request.text:
            return
        wording = Wording.of(request.text)
        entry = {
            "vector": self._vector(request.text).tobytes().hex(),
            "words": list(wording.words),
            "names": sorted(wording.names),
            "answer": encode_generations(generations),
        }
        scope = self._scope(request)
        with self._cache.transact():
            entries = json.loads(self._cache.get(scope) or "[]")
            entries = [*entries, entry][-self.max_entries :]
            self._cache.set(scope, json.dumps(entries), expire=self.ttl)

    def clear(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        self._cache.close()
