"""Finding pillars by name: the ``graphroute.pillars`` entry-point group.

Why entry points: a team can ship its own pillar (a classifier, a policy engine) as a
package, and ``CascadeRouter(pillars=["rules", "my-pillar"])`` finds it without graphroute
knowing it exists. The built-ins are declared in graphroute's own ``pyproject.toml`` in the
same group, so they are found the same way. When graphroute runs from a source checkout
that was never installed (no distribution metadata), ``BUILTINS`` — the same
``module:attribute`` strings as ``pyproject.toml`` — stands in for those entries.

An entry point names a ``Pillar`` subclass or any callable returning a ``Pillar``::

    # pyproject.toml of an outside package
    [project.entry-points."graphroute.pillars"]
    toxicity = "acme_routing.pillars:ToxicityPillar"

    from graphroute.pillars.registry import create
    pillar = create("toxicity", threshold=0.8)     # keyword arguments go to the factory
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from graphroute.errors import ConfigError, MissingExtraError
from graphroute.pillars.base import Pillar

GROUP = "graphroute.pillars"

# Keep in step with [project.entry-points."graphroute.pillars"] in pyproject.toml (a test checks).
BUILTINS: dict[str, str] = {
    "bandit": "graphroute.pillars.bandit:BanditPillar",
    "judge": "graphroute.pillars.judge:JudgePillar",
    "rules": "graphroute.pillars.rules:RulesPillar",
    "semantic": "graphroute.pillars.semantic:SemanticPillar",
}

PillarFactory = Callable[..., Pillar]

_registered: dict[str, PillarFactory] = {}
_lock = threading.Lock()


def register(name: str, factory: PillarFactory) -> None:
    """Register a pillar in code (tests, notebooks); entry points need no call."""
    with _lock:
        _registered[name] = factory


def unregister(name: str) -> None:
    with _lock:
        _registered.pop(name, None)


def _entry_points() -> dict[str, EntryPoint]:
    """Installed entries, plus the built-ins when graphroute itself is not installed."""
    found = {entry.name: entry for entry in entry_points(group=GROUP)}
    for name, value in BUILTINS.items():
        found.setdefault(name, EntryPoint(name=name, value=value, group=GROUP))
    return found


def available() -> list[str]:
    """Every pillar name that ``load`` accepts, sorted."""
    with _lock:
        names = set(_registered)
    return sorted(names | set(_entry_points()))


def load(name: str) -> PillarFactory:
    """The factory (usually a ``Pillar`` subclass) registered as ``name``."""
    with _lock:
        factory = _registered.get(name)
    if factory is not None:
        return factory
    entry = _entry_points().get(name)
    if entry is None:
        raise ConfigError(
            f"unknown pillar {name!r}; installed pillars: {', '.join(available())}. "
            f'A package adds one under [project.entry-points."{GROUP}"].'
        )
    try:
        factory = entry.load()
    except MissingExtraError:
        raise
    except ImportError as error:
        raise ConfigError(f"pillar {name!r} ({entry.value}) could not be imported: {error}") from error
    if not callable(factory):
        raise ConfigError(f"pillar {name!r} ({entry.value}) is not a Pillar class or factory")
    return factory  # type: ignore[no-any-return]


def create(name: str, **kwargs: Any) -> Pillar:
    """A new pillar instance: ``load(name)(**kwargs)``, checked to be a ``Pillar``."""
    pillar = load(name)(**kwargs)
    if not isinstance(pillar, Pillar):
        raise ConfigError(f"pillar {name!r} built a {type(pillar).__name__}, which is not a graphroute Pillar")
    return pillar
