"""Batching of model calls: collection windows, single flight, grouping per model, in-flight bounds."""

from __future__ import annotations

from graphroute.batching.batcher import BatchConfig, Batcher, Outcome
from graphroute.batching.gate import Gate
from graphroute.batching.single_flight import Flight, SingleFlight
from graphroute.batching.window import Window

__all__ = ["BatchConfig", "Batcher", "Flight", "Gate", "Outcome", "SingleFlight", "Window"]
