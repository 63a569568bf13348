"""Where graphroute keeps its data (traces, caches, assembled models)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

ENV_VAR = "GRAPHROUTE_HOME"


def data_dir() -> Path:
    """``$GRAPHROUTE_HOME`` if set, else the user's cache dir; created on first use."""
    path = Path(os.environ.get(ENV_VAR) or user_cache_dir("graphroute"))
    path.mkdir(parents=True, exist_ok=True)
    return path
