"""An OpenAI-compatible router: point any OpenAI client at graphroute.

``graphroute serve`` runs it; ``create_app`` builds the ASGI app for any ASGI server::

    from graphroute.server import create_app
    app = create_app("graphroute.toml", token="s3cret")     # uvicorn module:app

Requests name a pool model (used as is) or ``router-default`` / ``router-budget-<usd>`` /
``router-cloud-share-<fraction>`` (graphroute chooses). FastAPI is imported only here, on
demand: without the ``server`` extra the rest of graphroute works and this says what to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from graphroute.errors import MissingExtraError
from graphroute.providers.pool import ModelPool
from graphroute.routing.base import Router
from graphroute.scaleout.factory import open_trace_store
from graphroute.traces.store import TraceStore

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]


def require_server_extra() -> None:
    """Raise ``MissingExtraError`` naming the pip line when FastAPI or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingExtraError("the OpenAI-compatible server (graphroute serve)", "server") from None


def create_app(
    pool: ModelPool | Path | str | None = None,
    *,
    traces: TraceStore | Path | str | bool | None = None,
    token: str | None = None,
    warm: bool = False,
    router: Router | None = None,
    stop_local_servers: bool = False,
) -> FastAPI:
    """The server app for ``pool`` (a pool, a TOML path, or None for the embedded local model).

    ``traces``: a store or SQLite path; None: ``<data dir>/traces.sqlite``; False: none.
    ``token``: when set, ``/v1`` requests need ``Authorization: Bearer <token>``.
    ``warm``: start local model servers at start-up rather than on the first request.
    ``router``: what ``router-default`` routes with (e.g. a ``CascadeRouter`` with the rules
    pillar's privacy rules and a bandit); default: the pool's ``[routing]`` default and pins.
    ``stop_local_servers``: stop the process's managed llama.cpp servers when the app shuts down
    (``graphroute serve`` does: a SIGTERM from docker or systemd ends uvicorn without running
    ``atexit`` hooks, and the model servers would outlive it). Off by default, because an app
    embedded in a larger process may share those servers with other code.
    """
    require_server_extra()
    from graphroute.server.app import build_app

    if traces is False:
        store = None
    elif isinstance(traces, TraceStore):
        store = traces
    else:
        store = open_trace_store(None if traces is None or traces is True else traces)  # a path or postgresql://
    return build_app(
        ModelPool.coerce(pool),
        store=store,
        token=token,
        warm=warm,
        router=router,
        stop_local_servers=stop_local_servers,
    )
