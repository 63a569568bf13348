"""``graphroute inspect module:attr``: the annotated graph of an app, as a table and a picture.

The target names an app like ``uvicorn`` names one: ``package.module:attr`` (importable
from the current directory) or ``path/to/file.py:attr``. The attribute may be a compiled
graph, a ``StateGraph``, an optimized app, or a function returning one (``build_graph``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from graphroute.errors import GraphInspectionError, GraphRouteError, MissingExtraError
from graphroute.graph.identity import pin_targets
from graphroute.paths import data_dir


def load_target(target: str) -> Any:
    """The app ``module:attr`` or ``file.py:attr`` names (called if a graph factory); anything else is an error."""
    location, _, attribute = target.rpartition(":")
    if not location or not attribute:
        raise GraphInspectionError(f"{target!r} is not module:attr or path/to/file.py:attr (e.g. examples/app.py:app)")
    module = _load_module(location)
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            names = ", ".join(sorted(n for n in vars(module) if not n.startswith("_")))
            raise GraphInspectionError(f"{location} has no attribute {attribute!r}; it defines: {names}")
        value = getattr(value, part)
    if _is_app(value):
        return value
    if isinstance(value, type) or not callable(value):
        raise GraphInspectionError(f"{target} is {_kind(value)}, not a LangGraph app; {_EXPECTED}")
    try:
        built = value()  # a factory such as build_graph()
    except Exception as error:
        raise GraphInspectionError(
            f"{target} is callable, so it was called as a zero-argument graph factory, "
            f"and it raised {type(error).__name__}: {error}; {_EXPECTED}"
        ) from error
    if not _is_app(built):
        raise GraphInspectionError(
            f"{target} was called as a zero-argument graph factory and returned {_kind(built)}, "
            f"not a LangGraph app; {_EXPECTED}"
        )
    return built


_EXPECTED = (
    "point at a compiled graph, a StateGraph, an optimized app, or a function that takes no arguments "
    "and returns one (e.g. examples/research_assistant.py:app or examples.research_assistant:build_graph)"
)


def _is_app(value: object) -> bool:
    """What ``graphroute.graph.inspect`` reads: a compiled graph, a ``StateGraph`` or an optimized app."""
    from langgraph.graph import StateGraph
    from langgraph.pregel import Pregel

    from graphroute.optimize import OptimizedApp

    return isinstance(value, Pregel | StateGraph | OptimizedApp)


def _kind(value: object) -> str:
    """``the class mod.Name`` or ``a mod.Type``: what a wrong target turned out to be."""
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}"
    return f"a {type(value).__module__}.{type(value).__qualname__}"


def _load_module(location: str) -> Any:
    if location.endswith(".py") or "/" in location:
        path = Path(location)
        if not path.is_file():
            raise GraphInspectionError(f"no such file: {path}")
        name = f"graphroute_target_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        _exec(lambda: spec.loader.exec_module(module), path)  # type: ignore[union-attr]
        return module
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    return _exec(lambda: importlib.import_module(location), location)


def _exec(load: Any, what: object) -> Any:
    try:
        return load()
    except GraphRouteError:
        raise
    except Exception as error:
        raise GraphInspectionError(f"importing {what} failed: {type(error).__name__}: {error}") from error


def default_pool(target: str) -> Path | None:
    """``graphroute.toml`` in the current directory, else beside the target's file, if there is one."""
    location = target.rpartition(":")[0]
    folders = [Path.cwd()]
    if location.endswith(".py") or "/" in location:
        folders.append(Path(location).parent)
    return next((folder / "graphroute.toml" for folder in folders if (folder / "graphroute.toml").is_file()), None)


def node_models(entries: list[str], nodes: Iterable[str], *, option: str) -> dict[str, str]:
    """``node=model`` entries of a repeatable option, each node checked against the graph's.

    A pin typed for a node the graph lacks is a mistake, not a no-op (as with optimize's routes=).
    """
    given = {}
    for entry in entries:
        node, separator, model = entry.partition("=")
        if not separator or not node or not model:
            raise GraphInspectionError(f"{option} {entry!r}: write node=model, e.g. {option} plan=cloud")
        given[node] = model
    known = pin_targets(nodes)
    unknown = sorted(node for node in given if node not in known)
    if unknown:
        raise GraphInspectionError(
            f"{option} names node(s) {', '.join(unknown)} that the graph does not have; "
            f"its nodes are: {', '.join(sorted(known))}"
        )
    return given


def inspect_command(
    target: Annotated[str, typer.Argument(help="The app: package.module:attr or path/to/file.py:attr.")],
    traces: Annotated[
        str | None, typer.Option(help="Trace database (path or postgresql:// URL) to learn from; default: data dir's.")
    ] = None,
    pool: Annotated[
        Path | None, typer.Option(help="Pool TOML for prices and plan; default: graphroute.toml here or by the app.")
    ] = None,
    plan: Annotated[
        list[str] | None, typer.Option(help="A node's model, node=model (repeatable); adds to the pool's pins.")
    ] = None,
    png: Annotated[Path | None, typer.Option(help="Where to draw the PNG; default: <data dir>/graphs/.")] = None,
    draw: Annotated[bool, typer.Option("--draw/--no-draw", help="Draw a PNG when matplotlib is installed.")] = True,
    mermaid: Annotated[bool, typer.Option("--mermaid/--no-mermaid", help="Print the mermaid picture.")] = True,
) -> None:
    """Show an app's graph: per node its expected calls, tokens, cost, downstream cost and criticality."""
    from graphroute.graph import annotate, inspect
    from graphroute.graph.render import profile_table, to_mermaid, to_png
    from graphroute.providers.pool import ModelPool
    from graphroute.scaleout import open_existing_trace_store, redact
    from graphroute.traces.store import default_trace_path

    console = Console() if sys.stdout.isatty() else Console(width=160)
    try:
        graph = inspect(load_target(target))
        if graph.name == "LangGraph":  # LangGraph's default name says nothing: use the target's
            graph.name = target
        given = node_models(plan or [], graph.nodes, option="--plan")
        trace_path = traces or (str(default_trace_path()) if default_trace_path().exists() else None)
        pool = pool or default_pool(target)
        if pool is not None:
            console.print(f"pool: {pool}")
        model_pool = ModelPool.from_toml(pool) if pool else None
        planned = {**(model_pool.routing.nodes if model_pool else {}), **given}
        store = open_existing_trace_store(trace_path) if trace_path else None
        profiles = annotate(graph, traces=store, pool=model_pool, plan=planned)
    except GraphRouteError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    console.print(profile_table(graph, profiles))
    stats = graph.graph.get("trace_stats")
    source = redact(trace_path) if trace_path else ""
    learned = f"learned from {stats.runs} traced runs in {source}" if stats and stats.runs else "priors (no traces)"
    console.print(f"graph {graph.identity} · probabilities: {learned}")
    for loop in graph.loops:
        console.print(f"loop {sorted(loop.nodes)}: {loop.expected_iterations:.2f} expected iterations ({loop.source})")
    if mermaid:
        console.print("\n[bold]mermaid[/bold]")
        console.print(to_mermaid(graph, profiles), markup=False, highlight=False, soft_wrap=True)
    if draw:
        try:
            path = to_png(graph, profiles, png or data_dir() / "graphs" / f"{graph.identity}.png")
        except MissingExtraError as error:
            console.print(f"(no PNG: {escape(str(error))})")
        else:
            console.print(f"picture: {path}")


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_command)
