"""``optimize(graph)``: the same app, with every chat-model call routed and traced.

The returned ``OptimizedApp`` has the compiled graph's interface; node code is not touched.
Each run gets a run id, a trace row per model call, and a ``RoutingSession`` in its context
so the interception point (``routing/intercept.py``) knows where calls belong.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from graphroute.cache.layer import CacheLayer
from graphroute.cache.stats import CacheStats
from graphroute.errors import ConfigError, MissingAPIKeyError, UnknownModelError
from graphroute.graph.identity import compiled_app, graph_identity, node_ids, pin_targets, pins_within
from graphroute.pillars.bandit import BanditPillar
from graphroute.pillars.base import Pillar
from graphroute.planning.pacing import RollingBudget
from graphroute.planning.refresh import DEFAULT_REPLAN_EVERY, PlanRefresher
from graphroute.planning.targets import check_targets
from graphroute.providers.pool import ModelPool
from graphroute.routing.base import Router
from graphroute.routing.cascade import build_pillar
from graphroute.routing.default import default_router
from graphroute.routing.intercept import intercepting
from graphroute.routing.session import RoutingSession, active_session
from graphroute.scaleout.factory import open_trace_store
from graphroute.traces.node_events import NodeRunRecorder
from graphroute.traces.store import CallRecord, TraceStore

log = logging.getLogger(__name__)


@dataclass
class RunTrace:
    """What one run did: its id, every routed call in order, and what caching/batching saved."""

    run_id: str
    calls: list[CallRecord] = field(default_factory=list)
    status: str = "running"
    cache: CacheStats = field(default_factory=CacheStats)

    @property
    def cost_usd(self) -> float:
        return sum(call.cost_usd for call in self.calls)

    def by_node(self) -> dict[str, list[CallRecord]]:
        grouped: dict[str, list[CallRecord]] = {}
        for call in self.calls:
            grouped.setdefault(call.node or "(outside graph)", []).append(call)
        return grouped


class OptimizedApp:
    """A compiled LangGraph app whose chat-model calls go through graphroute.

    Usage::

        app = optimize(builder, pool="graphroute.toml")
        app.invoke({"question": "..."})
        app.last_run.calls          # one CallRecord per model call
    """

    def __init__(
        self, app: Any, *, pool: ModelPool, router: Router, store: TraceStore, cache_layer: CacheLayer | None = None
    ) -> None:
        self.app = app
        self.pool = pool
        self.router = router
        self.store = store
        self.cache_layer = cache_layer
        self.graph_id = graph_identity(app)
        self.last_run: RunTrace | None = None

    # -- one run ------------------------------------------------------------------------------
    @contextmanager
    def _run(self, config: Any) -> Iterator[tuple[RoutingSession, Any]]:
        """One traced run; yields the session and the config to pass on (with our node recorder)."""
        run_id = str(uuid.uuid4())
        metadata = {"thread_id": (config or {}).get("configurable", {}).get("thread_id")}
        plan = self.plan
        self.store.start_run(
            run_id,
            self.graph_id,
            metadata,
            # The report's budget section and replay's "recorded plan" read these back.
            plan=None if plan is None else str(plan),
            budget_usd=getattr(plan, "budget_usd", None),
        )
        session = RoutingSession(pool=self.pool, router=self.router, store=self.store, run_id=run_id)
        trace = RunTrace(run_id=run_id, calls=session.calls)
        self.last_run = trace
        layer = self.cache_layer
        reuse = layer.activate(trace.cache, self.store, run_id) if layer is not None else nullcontext()
        try:
            with intercepting(), active_session(session), reuse:
                yield session, with_callback(config, NodeRunRecorder(self.store, run_id))
        except BaseException as error:
            trace.status = "error"
            self.store.end_run(run_id, "error", f"{type(error).__name__}: {error}")
            self._report_spend(run_id, trace)
            translated = _client_key_error(error, self.pool)
            if translated is not None:
                raise translated from error
            raise
        trace.status = "ok"
        self.store.end_run(run_id, "ok")
        self._report_spend(run_id, trace)

    def _report_spend(self, run_id: str, trace: RunTrace) -> None:
        """Real spend goes back to a budget-pacing router, which also frees the run's state."""
        end_run = getattr(self.router, "end_run", None)
        if callable(end_run):
            end_run(run_id, trace.cost_usd)

    def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        with self._run(config) as (_, run_config):
            return self.app.invoke(input, run_config, **kwargs)

    async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
        with self._run(config) as (_, run_config):
            return await self.app.ainvoke(input, run_config, **kwargs)

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
        with self._run(config) as (_, run_config):
            yield from self.app.stream(input, run_config, **kwargs)

    async def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        with self._run(config) as (_, run_config):
            async for chunk in self.app.astream(input, run_config, **kwargs):
                yield chunk

    def batch(self, inputs: Sequence[Any], config: Any = None, **kwargs: Any) -> list[Any]:
        """One run (and run id) per input, run concurrently like ``Runnable.batch``."""
        configs = config if isinstance(config, list) else [config] * len(inputs)
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(inputs)))) as pool:
            return list(
                pool.map(lambda pair: self.invoke(pair[0], pair[1], **kwargs), zip(inputs, configs, strict=True))
            )

    async def abatch(self, inputs: Sequence[Any], config: Any = None, **kwargs: Any) -> list[Any]:
        configs = config if isinstance(config, list) else [config] * len(inputs)
        return list(await asyncio.gather(*(self.ainvoke(i, c, **kwargs) for i, c in zip(inputs, configs, strict=True))))

    @property
    def plan(self) -> Any:
        """The holistic plan when optimized under a budget (printable), else None."""
        return getattr(self.router, "plan", None)

    # -- the rest of the compiled graph's interface -------------------------------------------
    def get_graph(self, *args: Any, **kwargs: Any) -> Any:
        return self.app.get_graph(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # get_state, update_state, checkpointer, nodes, ... behave exactly as on the app.
        return getattr(self.app, name)

    def __repr__(self) -> str:
        return f"OptimizedApp({self.graph_id}, router={type(self.router).__name__}, models={self.pool.names})"


def optimize(
    graph: Any,
    *,
    pool: ModelPool | Path | str | None = None,
    router: Router | None = None,
    routes: Mapping[str, str] | None = None,
    traces: TraceStore | Path | str | None = None,
    cache: Any = None,
    batching: Any = None,
    budget_usd: float | None = None,
    cloud_share: float | None = None,
    replan_every: int | None = DEFAULT_REPLAN_EVERY,
    quorums: Mapping[str, float] | None = None,
    pillars: Sequence[Pillar | str] | None = None,
    rolling_budget: RollingBudget | None = None,
    **compile_kwargs: Any,
) -> OptimizedApp:
    """Wrap a LangGraph app (``StateGraph`` or compiled) so its model calls are routed.

    ``pool``: a ``ModelPool``, a pool TOML path, or None for the embedded local default.
    ``routes``: node → model pins, added to (and overriding) the pool file's ``[routing.nodes]``.
    ``traces``: a ``TraceStore``, a SQLite path or a ``postgresql://`` URL (one database for many
    workers); default: the pool file's ``[storage] traces``, else ``<data dir>/traces.sqlite``.
    ``cache``: ``True``, a directory, a ``redis://`` URL (shared by workers) or a
    ``graphroute.cache.CacheConfig`` — node state and deterministic model answers are reused
    across runs and processes (default off).
    ``batching``: ``True`` or a ``graphroute.batching.BatchConfig`` — concurrent calls to one model
    are grouped and identical ones sent once (default off).
    ``budget_usd`` (per run) or ``cloud_share`` (0–1): plan the whole run under that budget
    (``graphroute.planning``); ``app.plan`` prints the plan. Exclusive with ``router``. Pins
    (``routes`` and the pool file's) still hold: a pinned node's calls keep their model
    whatever the budget, and the plan counts their cost and spends the rest on the other nodes.
    ``replan_every``: with a budget, re-plan from the traces every that many runs, in the
    background (``None``: keep the first plan). ``quorums``: with a budget, fan-out nodes whose
    run needs only some copies to succeed — ``{"worker": 2 / 3}`` (a share, rounded up) or ``{"worker": 4}``.
    ``pillars``: asked for each call's difficulty, cheapest first, stopping at the first sure one
    (registry names — ``"rules"``, ``"semantic"``, ``"judge"``, a plug-in's — or instances). With a
    budget they pick each call's rung of its node's ladder (default: the pool file's ``[routing]
    pillars``, else the rules alone); without one, every call is routed through a
    ``CascadeRouter`` of them (default: the pool file's, else the default model), pins still winning.
    ``rolling_budget``: with a budget, also keep ``RollingBudget(total_usd=300, period_s=30 * 86400)``
    (or ``runs=...``) over many runs: a run that overspends early makes later ones cheaper, and a
    ``ledger="redis://..."`` makes every worker share it.
    ``compile_kwargs`` (checkpointer, store, interrupts, ...) are used when ``graph`` is a StateGraph.
    """
    _check_compile_options(compile_kwargs)
    _check_budget(budget_usd, cloud_share, router)
    if replan_every is not None and (
        not isinstance(replan_every, int) or isinstance(replan_every, bool) or replan_every < 1
    ):
        raise ConfigError(f"replan_every must be a whole number of runs ≥ 1 (or None: never), got {replan_every!r}")
    if quorums and budget_usd is None and cloud_share is None:
        raise ConfigError("quorums shape a budget's plan: add budget_usd=... or cloud_share=..., or drop quorums")
    if rolling_budget is not None and budget_usd is None and cloud_share is None:
        raise ConfigError("a rolling budget is kept on top of a plan: add budget_usd=... (per run) or cloud_share=...")
    if pillars is not None and router is not None:
        raise ConfigError("pillars build the router: drop router=... or drop pillars=...")
    app = compiled_app(graph, **compile_kwargs)
    model_pool = ModelPool.coerce(pool)
    # A TraceStore, a SQLite path, or postgresql:// for many workers; else the pool file's [storage].
    store = open_trace_store(traces if traces is not None else model_pool.config.storage.traces)
    if router is None and (budget_usd is not None or cloud_share is not None):
        from graphroute.planning.estimates import semantic_estimates
        from graphroute.planning.live import plan_app, planned_router

        # The pillars' difficulty picks each call's rung of its node's ladder (by default the rules
        # alone: microseconds, no model); traced with the call, it is also what the node's
        # complexity is learned from.
        named = pillars if pillars is not None else model_pool.routing.pillars
        asked = difficulty_pillars(model_pool, named or ["rules"])
        # A semantic pillar trained on this pool's models gives each call's per-model success.
        estimates = semantic_estimates(asked, model_pool.names)
        how = "each call's rung: picked by the difficulty from " + " → ".join(pillar.name for pillar in asked)
        if estimates is not None:
            how += ", or per-model success from the semantic pillar's router when it estimates every pool model"

        # Pins hold under a budget too: their nodes keep their model, the plan spends the rest.
        pins = _pins_for(app, model_pool, routes)

        def make_plan() -> Any:
            plan = plan_app(
                app,
                model_pool,
                budget_usd=budget_usd,
                cloud_share=cloud_share,
                traces=store,
                quorums=quorums,
                pins=pins,
            )
            plan.notes.append(how)
            return plan

        refresher = PlanRefresher(make_plan, every=replan_every) if replan_every is not None else None
        router = planned_router(
            make_plan(),
            budget_usd=budget_usd,
            rolling=rolling_budget,
            pillars=asked,
            estimates=estimates,
            refresher=refresher,
        )
    if router is None:
        router = default_router(model_pool, _pins_for(app, model_pool, routes), pillars)
    layer = CacheLayer.build(model_pool, cache, batching)
    if layer is not None:
        app = layer.install(app, graph_identity(app))
    return OptimizedApp(app, pool=model_pool, router=router, store=store, cache_layer=layer)


def _client_key_error(error: BaseException, pool: ModelPool) -> MissingAPIKeyError | None:
    """Explain a node's ``ChatOpenAI(...)`` that could not even be built for want of a key.

    The openai package checks for ``OPENAI_API_KEY`` when the client is constructed, in the
    node's own code, before any call reaches graphroute — so an app written against ChatOpenAI
    fails on an all-local pool although no call would ever go to OpenAI.
    """
    if type(error).__module__.split(".")[0] != "openai" or "OPENAI_API_KEY" not in str(error):
        return None
    readers = [spec.name for spec in pool if spec.api_key_env == "OPENAI_API_KEY"]
    if readers:
        fix = f"export OPENAI_API_KEY (pool model(s) {', '.join(readers)} read it too)"
    else:
        fix = (
            "export OPENAI_API_KEY=unused (no pool model reads it: every call goes to a pool model, "
            "with that model's own key) or build the client with api_key=..."
        )
    message = (
        "a node built ChatOpenAI, which the openai package refuses to construct without $OPENAI_API_KEY, "
        f"before graphroute routes its calls to the pool; {fix}"
    )
    return MissingAPIKeyError("ChatOpenAI", "OPENAI_API_KEY", message=message)


def _pins_for(app: Any, pool: ModelPool, routes: Mapping[str, str] | None) -> dict[str, str]:
    """The pins that apply to this app: ``routes`` and the pool file's ``[routing.nodes]``.

    A pin given in code for a node the graph does not have is a mistake in that code: an error.
    A pool file may serve several apps (the same file for ``serve``, ``RoutedChatModel`` and other
    graphs), so its pins for nodes this graph lacks are skipped, with a warning naming them.
    """
    known_nodes = pin_targets(node_ids(app))
    for node, model in (routes or {}).items():
        if model not in pool.names:
            raise UnknownModelError(model, pool.names, entry=f"routes={{{node!r}: ...}}")
    listing = ", ".join(sorted(known_nodes))
    for node in routes or {}:
        if node not in known_nodes:
            raise ConfigError(f"routes= pins node {node!r}, which is not in the graph; its nodes are: {listing}")
    file_pins = pins_within(pool.routing.nodes, known_nodes)
    absent = [node for node in pool.routing.nodes if node not in file_pins]
    if absent:
        where = f" in {pool.source}" if pool.source else ""
        log.warning(
            "pins for nodes this graph does not have are skipped%s: %s (its nodes are: %s)",
            where,
            ", ".join(f"[routing.nodes] {node}" for node in absent),
            listing,
        )
    return {**file_pins, **(routes or {})}


def _check_compile_options(options: Mapping[str, Any]) -> None:
    """Extra keywords go to ``StateGraph.compile``: a misspelt ``budget_usd`` must not read as a graph error."""
    if not options:
        return
    from langgraph.graph import StateGraph

    accepted = set(inspect.signature(StateGraph.compile).parameters) - {"self"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        own = [name for name in inspect.signature(optimize).parameters if name not in ("graph", "compile_kwargs")]
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, own, 1)
            hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
        raise ConfigError(
            f"optimize() got unknown keyword(s) {', '.join(hints)}; its own are {', '.join(own)}, "
            f"and StateGraph.compile takes {', '.join(sorted(accepted))}"
        )


def difficulty_pillars(pool: ModelPool, pillars: Sequence[Pillar | str]) -> list[Pillar]:
    """The pillars a budget's plan asks for each call's difficulty (a bandit picks models, not
    difficulty: the plan picks models itself, so one is refused)."""
    built = [build_pillar(name, pool) if isinstance(name, str) else name for name in pillars]
    for pillar in built:
        if isinstance(pillar, BanditPillar):
            raise ConfigError(
                "a bandit chooses between models, and a budget's plan chooses them itself: "
                "drop 'bandit' from pillars (or drop the budget and route with a CascadeRouter)"
            )
    return built


def _check_budget(budget_usd: float | None, cloud_share: float | None, router: Router | None) -> None:
    check_targets(budget_usd, cloud_share)
    if budget_usd is not None and cloud_share is not None:
        raise ConfigError("give budget_usd or cloud_share, not both")
    if (budget_usd is not None or cloud_share is not None) and router is not None:
        raise ConfigError(
            "a budget plans every node itself: drop router= or drop the budget "
            "(to fix some nodes' models under a budget, pin them with routes={node: model})"
        )


def with_callback(config: Any, handler: BaseCallbackHandler) -> dict[str, Any]:
    """A copy of ``config`` with ``handler`` added to its callbacks, whatever form they take."""
    run_config = dict(config or {})
    callbacks = run_config.get("callbacks")
    if callbacks is None:
        run_config["callbacks"] = [handler]
    elif isinstance(callbacks, list):
        run_config["callbacks"] = [*callbacks, handler]
    else:  # a callback manager
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        run_config["callbacks"] = manager
    return run_config
