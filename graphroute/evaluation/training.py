"""Fit semantic routers from outcome data, and the default router trained on first use.

``train_router`` embeds the prompts of an ``OutcomeTable`` and fits a ``SuccessEstimator``;
the weak (reference) tier is chosen per data source: the cheapest model when prices are known
(LLMRouter), else the least accurate one (RouteLLM's Mixtral). The strong tier is the most
accurate model of each source.

The default router is *not* shipped inside the package: the outcome data lives outside it
(``shared/data``) and a router holds ~20k exemplar embeddings (~11 MB). It is trained on first
use into ``<data dir>/routers/default`` from the public data in ``shared/data``, found through
``$GRAPHROUTE_TRAINING_DATA`` or next to a source checkout (``<project root>/../shared/data``).
When neither exists, asking for it raises a ``ConfigError`` that says how to train one. Its
encoder is ``DEFAULT_ENCODER`` (the static one, distilled on first use); a default router left
by an older version with another encoder is retrained, not mixed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from graphroute.errors import ConfigError
from graphroute.evaluation.data import OutcomeTable, load_outcomes
from graphroute.paths import data_dir
from graphroute.pillars.encoders import (
    SHAPE2_SUFFIX,
    SHAPE_SUFFIX,
    STATIC_NAME,
    Encoder,
    encoder_for,
    encoder_name,
    probe_vectors,
    split_shape,
)
from graphroute.pillars.semantic import (
    BASE_KINDS,
    ROUTER_FILE,
    KNNSuccessEstimator,
    LogisticSuccessEstimator,
    SemanticRouter,
    SuccessEstimator,
)

DATA_ENV = "GRAPHROUTE_TRAINING_DATA"
# What `graphroute train` and the default router fit, chosen by benchmarks/routellm_eval.py
# (see benchmarks/RESULTS.md): (estimator kind, features appended to the embedding: "" none,
# "+shape" six prompt-shape features, "+shape2" those and thirteen word-problem features).
DEFAULT_ROUTER: tuple[str, str] = ("logistic", "+shape2")
DEFAULT_ESTIMATOR = DEFAULT_ROUTER[0]
# The sentence encoder under the default router: the static (distilled MiniLM) one meets the
# semantic pillar's latency goal (p50 ≤ 5 ms) where MiniLM does not, for ~0.01 APGR (RESULTS.md).
DEFAULT_ENCODER = STATIC_NAME
# Tuned values (benchmarks/RESULTS.md), spelled out here although they are the classes' defaults.
DEFAULT_PARAMS: dict[str, dict[str, float]] = {"knn": {"k": 100, "temperature": 1.0}, "logistic": {"l2": 1000.0}}


def training_encoder(features: str = DEFAULT_ROUTER[1], *, base: str = DEFAULT_ENCODER) -> Encoder:
    """The ``base`` encoder (a name or alias: ``static``, ``minilm``) with ``features`` appended
    (``""``, ``"+shape"`` or ``"+shape2"``)."""
    if features not in ("", SHAPE_SUFFIX, SHAPE2_SUFFIX):
        raise ConfigError(f"features {features!r}: use '', {SHAPE_SUFFIX!r} or {SHAPE2_SUFFIX!r}")
    return encoder_for(split_shape(encoder_name(base))[0] + features)


def make_estimator(kind: str = DEFAULT_ESTIMATOR, **params: float) -> SuccessEstimator:
    """An unfitted estimator by name (``knn`` or ``logistic``) with the tuned defaults."""
    if kind not in BASE_KINDS:
        raise ConfigError(f"unknown estimator {kind!r}; use one of: {', '.join(BASE_KINDS)}")
    merged = {**DEFAULT_PARAMS.get(kind, {}), **params}
    if kind == KNNSuccessEstimator.kind:
        return KNNSuccessEstimator(
            int(merged.pop("k")),
            temperature=merged.get("temperature", 1.0),
            prior_strength=merged.get("prior_strength", 2.0),
        )
    return LogisticSuccessEstimator(merged.get("l2", 1000.0), iterations=int(merged.get("iterations", 12)))


def source_groups(table: OutcomeTable) -> list[list[str]]:
    """Models measured on the same rows (one group per data source)."""
    known = ~np.isnan(table.outcomes)
    groups: dict[bytes, list[str]] = {}
    for j, model in enumerate(table.models):
        groups.setdefault(np.packbits(known[:, j]).tobytes(), []).append(model)
    return list(groups.values())


def reference_tiers(table: OutcomeTable, weak: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """(weak, strong) pairs, one per source: the cheapest (else least accurate) model, or the
    given ``weak`` ones, each paired with the most accurate model measured on the same rows."""
    accuracy = table.accuracy()
    prices = table.prices or {}
    groups = source_groups(table)
    if weak:
        unknown = [m for m in weak if m not in table.models]
        if unknown:
            raise ConfigError(f"--weak {unknown}: not in the data; its models are {', '.join(table.models)}")
        chosen = list(weak)
    else:
        chosen = []
        for group in groups:
            if all(m in prices for m in group):
                chosen.append(min(group, key=lambda m: (sum(prices[m]), -accuracy[m])))
            else:
                chosen.append(min(group, key=lambda m: accuracy[m]))
    strong = []
    for model in chosen:
        others = [m for m in next(g for g in groups if model in g) if m != model]
        if not others:  # a single-model source: no gain to estimate, the router scores by difficulty
            return chosen, []
        strong.append(max(others, key=lambda m: accuracy[m]))
    return chosen, strong


def train_router(
    table: OutcomeTable,
    *,
    encoder: Encoder | None = None,
    estimator: SuccessEstimator | str = DEFAULT_ESTIMATOR,
    weak: Sequence[str] | None = None,
) -> SemanticRouter:
    """Embed the table's prompts and fit a router on them."""
    encoder = encoder or training_encoder()
    if isinstance(estimator, str):
        estimator = make_estimator(estimator)
    embeddings = encoder.encode(table.prompts)
    estimator.fit(embeddings, table.outcomes, table.models)
    weak_tier, strong_tier = reference_tiers(table, weak)
    accuracy = table.accuracy()
    metadata = {
        "trained_on": table.sources,
        "rows": len(table),
        "accuracy": {m: round(a, 4) for m, a in accuracy.items()},
        "prices": {m: list(p) for m, p in (table.prices or {}).items()},
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return SemanticRouter(
        estimator,
        encoder_name=encoder.name,
        weak=weak_tier,
        strong=strong_tier,
        exemplars=embeddings,
        metadata=metadata,
        probe=probe_vectors(encoder),
    )


def find_training_data() -> Path | None:
    """``$GRAPHROUTE_TRAINING_DATA``, else ``shared/data`` beside a source checkout or the cwd."""
    explicit = os.environ.get(DATA_ENV)
    if explicit:
        path = Path(explicit)
        if not path.exists():
            raise ConfigError(f"${DATA_ENV} points at a missing directory", path=path)
        return path
    project_root = Path(__file__).resolve().parents[2]
    for candidate in (project_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if (candidate / "routellm").is_dir() or (candidate / "llmrouter").is_dir():
            return candidate
    return None


def default_router_dir() -> Path:
    return data_dir() / "routers" / "default"


_LOADED: dict[Path, SemanticRouter] = {}
_LOCK = threading.Lock()


def _trained_with(directory: Path) -> str | None:
    try:
        return str(json.loads((directory / ROUTER_FILE).read_text(encoding="utf-8"))["encoder"])
    except (OSError, ValueError, KeyError):
        return None


def default_router(*, encoder: Encoder | None = None, rebuild: bool = False) -> SemanticRouter:
    """The default router: loaded from the data dir, or trained there on first use.

    A default router trained with another encoder than today's default (e.g. MiniLM, the
    default before the static encoder) is retrained, never used with the wrong vectors.
    """
    directory = default_router_dir()
    encoder = encoder or training_encoder()
    with _LOCK:
        if not rebuild and directory in _LOADED and _LOADED[directory].encoder_name == encoder.name:
            return _LOADED[directory]
        stale = _trained_with(directory) not in (None, encoder.name)
        if rebuild or stale or not (directory / ROUTER_FILE).exists():
            source = find_training_data()
            if source is None:
                raise ConfigError(
                    "the default router is trained on first use from the public outcome data (shared/data), "
                    f"which was not found. Set {DATA_ENV}=/path/to/shared/data, or train a router with "
                    "`graphroute train --data PATH --out DIR` and pass --router DIR",
                    path=directory,
                )
            why = f"its encoder is now {encoder.name}" if stale else "first use"
            print(f"graphroute: training the default router from {source} ({why})...", file=sys.stderr)
            router = train_router(load_outcomes([source]), encoder=encoder)
            # Build beside the final place and swap in, so a crash never leaves half a router.
            directory.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".default-", dir=directory.parent))
            router.save(staging)
            shutil.rmtree(directory, ignore_errors=True)
            staging.rename(directory)
        _LOADED[directory] = SemanticRouter.load(directory)
        return _LOADED[directory]
