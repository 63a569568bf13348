"""Per-model success estimates for a live plan, from a semantic pillar trained on the pool's models.

A plan chooses each call's model by ``worth·p_m − c_m``. With only a difficulty (the pillars'
usual output) it must read ``p_m`` off the node's ladder; a semantic router whose estimator was
trained on outcomes of *this pool's* models (``graphroute train`` on an outcome file naming
them) gives ``p_m`` for the very prompt, per model — what the workflow benchmark's plan uses.
A router trained on other models (the default one, fitted on a public benchmark's models)
cannot, and the plan keeps using the difficulty.

Usage::

    source = PillarEstimates(SemanticPillar("~/routers/ours"), pool.names)
    router = PlannedRouter(plan, estimates=source, pillars=[rules])
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from graphroute.pillars.base import RouteRequest

if TYPE_CHECKING:
    from graphroute.pillars.semantic import SemanticPillar


class PillarEstimates:
    """An estimate source (``router.EstimateSource``) reading a semantic pillar's router."""

    def __init__(self, pillar: SemanticPillar, models: Sequence[str]) -> None:
        self.pillar = pillar
        self.models = list(models)

    @cached_property
    def covers(self) -> bool:
        """Does the pillar's router estimate every planned model? (Read once: loading it is slow.)"""
        return set(self.models) <= set(self.pillar.router.models)

    def __call__(self, request: RouteRequest) -> dict[str, float] | None:
        if not self.covers:
            return None
        return self.pillar.estimates(request.last_user_text)


def semantic_estimates(pillars: Sequence[object], models: Sequence[str]) -> PillarEstimates | None:
    """An estimate source from the first semantic pillar among ``pillars``, if there is one."""
    from graphroute.pillars.semantic import SemanticPillar

    for pillar in pillars:
        if isinstance(pillar, SemanticPillar):
            return PillarEstimates(pillar, models)
    return None
