"""Small pools and demands whose optimal plans can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from graphroute import ModelPool
from graphroute.planning import NodeDemand, PoolPrices
from graphroute.testing import ScriptedProvider

MILLION = 1_000_000


@pytest.fixture
def two_models() -> PoolPrices:
    """``cheap`` and ``strong``; a call of 1M tokens in and out costs $2 and $20."""
    return PoolPrices.of({"cheap": (1.0, 1.0), "strong": (10.0, 10.0)}, local=["cheap"])


def typical(node: str, cheap: float, strong: float) -> NodeDemand:
    """A node known by one typical call: success of each model, $2 / $20 per call."""
    return NodeDemand.typical(node, np.array([cheap, strong]), input_tokens=MILLION, output_tokens=MILLION)


def local_and_cloud(provider: ScriptedProvider, price: float = 10.0) -> ModelPool:
    """A free local model and a cloud one at ``price`` USD per 1M tokens in and out, both scripted."""
    return ModelPool.from_dict({
        "routing": {"default": "local"},
        "models": {
            "local": provider.pool_entry(locality="local"),
            "cloud": provider.pool_entry(locality="cloud", input_price=price, output_price=price),
        },
    })  # fmt: skip
