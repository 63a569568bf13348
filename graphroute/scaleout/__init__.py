"""Scale-out backends: many workers on many machines sharing one router's state.

graphroute stays a library inside each worker; what must be shared lives in engines built for
it. Pick a backend by URL (``redis://…``, ``postgresql://…``); a path or None keeps the local
default (diskcache + SQLite). See ``factory.py`` for the table of what goes where.

Usage::

    from graphroute.scaleout import open_bandit_store, open_spend_ledger, open_trace_store

    app = optimize(graph, traces="postgresql://graphroute@db/traces", cache="redis://cache:6379/0")
    bandit = BanditPillar(store=open_bandit_store("redis://cache:6379/0?prefix=my-app"))
    pacer = BudgetPacer(lam, total_usd=500.0, period_s=30 * 86400, ledger=open_spend_ledger("redis://cache:6379/0"))

Needs the ``scale`` extra (``redis``, ``psycopg[binary]``).
"""

from __future__ import annotations

from graphroute.scaleout.factory import (
    open_bandit_store,
    open_existing_trace_store,
    open_node_cache,
    open_response_cache,
    open_single_flight,
    open_spend_ledger,
    open_trace_store,
)
from graphroute.scaleout.urls import StoreLocation, backend_of, is_url, redact

__all__ = [
    "StoreLocation",
    "backend_of",
    "is_url",
    "open_bandit_store",
    "open_existing_trace_store",
    "open_node_cache",
    "open_response_cache",
    "open_single_flight",
    "open_spend_ledger",
    "open_trace_store",
    "redact",
]
