"""The router a pool's calls get when nobody passes one.

One place for the rule, so ``optimize``, ``RoutedChatModel`` and the server's ``router-default``
route the same pool file the same way: pins first (the pool file's ``[routing.nodes]`` plus any
given), then — when the pool file names ``[routing] pillars`` (or the caller does) — a
``CascadeRouter`` of those pillars, else the pool's default model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from graphroute.errors import ConfigError
from graphroute.pillars.base import Pillar
from graphroute.providers.pool import ModelPool
from graphroute.routing.base import Router
from graphroute.routing.static import StaticRouter


def default_router(
    pool: ModelPool, pins: Mapping[str, str] | None = None, pillars: Sequence[Pillar | str] | None = None
) -> Router:
    """Pins over the pillars' cascade (``pillars``, else the pool file's), else over the default model."""
    from graphroute.routing.cascade import CascadeRouter

    pins = dict(pool.routing.nodes if pins is None else pins)
    if pillars is None and pool.routing.pillars:
        try:
            return CascadeRouter(pool, pool.routing.pillars, pins=pins)
        except ConfigError as error:  # e.g. a plug-in that cannot be imported or built: name the entry
            raise ConfigError(str(error), path=pool.source, entry="routing.pillars") from error
    if pillars:
        return CascadeRouter(pool, pillars, pins=pins)
    return StaticRouter(pool.default_model(), pins, known=pool.names)
