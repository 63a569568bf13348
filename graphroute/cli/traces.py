"""Trace commands: ``replay``, ``report``, ``export``, ``import``, ``export-preferences``, ``feedback``.

``TRACES`` is a trace database (``.sqlite``), a JSONL export, or a ``postgresql://`` URL (the
shared store of many workers); left out, the data dir's ``traces.sqlite`` (where ``optimize``
records by default).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from graphroute.errors import ConfigError, GraphRouteError

if TYPE_CHECKING:
    from graphroute.traces.store import TraceStore

# A str, not a Path: a Path would fold the "//" of a postgresql:// URL.
TracesArg = Annotated[
    str | None,
    typer.Argument(help="Trace database (.sqlite), JSONL export or postgresql:// URL; default: the data dir's traces."),
]


def _open(traces: str | None) -> TraceStore:
    """The store a user named: a ``postgresql://`` URL, else a SQLite file or JSONL export."""
    from graphroute.scaleout.urls import is_url

    if is_url(traces):
        from graphroute.scaleout import open_trace_store

        return open_trace_store(traces)
    from graphroute.traces.transfer import open_traces

    return open_traces(traces)


def _console() -> Console:
    # Logs and CI capture are not terminals: give tables room instead of rich's 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=160)


@contextmanager
def _errors(console: Console) -> Iterator[None]:
    try:
        yield
    except GraphRouteError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None


def _pair(item: str) -> tuple[str, str]:
    name, sep, column = item.partition("=")
    if not sep or not name or not column:
        raise ConfigError(f"--success-map takes POOL_MODEL=SUCCESS_MODEL_COLUMN, got {item!r}")
    return name.strip(), column.strip()


def replay(
    traces: TracesArg = None,
    plan: Annotated[list[Path] | None, typer.Option("--plan", help="Plan file (pool-style TOML); repeatable.")] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option("--strategy", help="all-local, all-cloud, cheapest, priciest; repeatable."),
    ] = None,
    pool: Annotated[Path | None, typer.Option(help="Pool TOML with models and prices for strategies.")] = None,
    outcomes: Annotated[Path | None, typer.Option(help="Known results (JSONL) that make quality exact.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a cost–quality PNG here (needs the plot extra).")] = None,
    graph: Annotated[str | None, typer.Option(help="Only runs of this graph identity.")] = None,
    success_model: Annotated[
        Path | None, typer.Option(help="Router directory (graphroute train) whose success model estimates quality.")
    ] = None,
    success_map: Annotated[
        list[str] | None,
        typer.Option("--success-map", help="POOL_MODEL=SUCCESS_MODEL_COLUMN, e.g. cloud=gpt-4; repeatable."),
    ] = None,
) -> None:
    """Re-cost recorded runs under other plans: cost, latency, quality (exact or ~estimated), cloud share."""
    from graphroute.providers.pool import ModelPool
    from graphroute.traces.outcomes import OutcomeIndex, load_outcomes
    from graphroute.traces.plans import RecordedPlan, ReplayPlan, load_plan, merged_pool
    from graphroute.traces.plans import strategy as named_strategy
    from graphroute.traces.render import cost_quality_plot, replay_table
    from graphroute.traces.replay import QualityEstimator, SuccessModelEstimator, empirical_estimator
    from graphroute.traces.replay import replay as run_replay

    console = _console()
    with _errors(console):
        if not plan and not strategy:
            raise ConfigError("nothing to compare: pass at least one --plan FILE or --strategy NAME")
        base_pool = ModelPool.from_toml(pool) if pool else None
        plans: list[ReplayPlan] = [RecordedPlan()]
        for path in plan or []:
            plans.append(load_plan(path, pool=base_pool))
        strategy_pool = base_pool or merged_pool(p.pool for p in plans if p.pool is not None)
        plans += [named_strategy(name, strategy_pool) for name in strategy or [] if name != "recorded"]
        store = _open(traces)
        calls = store.calls(graph=graph)
        if not calls:
            raise ConfigError("no recorded calls to replay", path=store.path)
        extra = load_outcomes(outcomes) if outcomes else []
        index = OutcomeIndex.build(calls, store.feedback(), store.runs(graph), extra=extra)
        estimator: QualityEstimator = empirical_estimator(calls, plans, index)
        if success_model is not None:
            from graphroute.pillars.semantic import SemanticPillar

            mapping = dict(_pair(item) for item in success_map or [])
            estimator = SuccessModelEstimator(SemanticPillar(success_model), mapping, fallback=estimator)
        results = run_replay(calls, plans, index=index, estimator=estimator)
        shown = store.path if traces is None or "://" in traces else traces  # a URL: its password hidden
        console.print(replay_table(results, title=f"Replay of {shown}"))
        if plot is not None:
            console.print(f"plot: {cost_quality_plot(results, plot)}")


def report(
    traces: TracesArg = None,
    html: Annotated[Path, typer.Option(help="Write the self-contained HTML page here.")] = Path(
        "graphroute-report.html"
    ),
    graph: Annotated[str | None, typer.Option(help="Only runs of this graph identity.")] = None,
) -> None:
    """One dense HTML page: spend over time, per node and model, decisions, quality, budget vs spend."""
    from graphroute.traces.html import write_html
    from graphroute.traces.render import money
    from graphroute.traces.report import build_report

    console = _console()
    with _errors(console):
        data = build_report(_open(traces), graph=graph)
        path = write_html(data, html)
    console.print(f"{len(data.runs)} runs, {data.calls} calls, {money(data.spend_usd)} → {path}")


def export(
    traces: TracesArg = None,
    out: Annotated[Path, typer.Option(help="JSONL file to write.")] = Path("traces.jsonl"),
    run: Annotated[list[str] | None, typer.Option("--run", help="Only this run id; repeatable.")] = None,
    no_text: Annotated[bool, typer.Option("--no-text", help="Leave prompts and outputs out.")] = False,
) -> None:
    """Write traces as JSON lines, to import on another machine (importing twice adds nothing)."""
    from graphroute.traces.transfer import export_jsonl

    console = _console()
    with _errors(console):
        counts = export_jsonl(_open(traces), out, run_ids=run, keep_text=not no_text)
    console.print(", ".join(f"{count} {kind}s" for kind, count in counts.items()) + f" → {out}")


def import_(
    file: Annotated[Path, typer.Argument(help="A JSONL export.")],
    into: Annotated[
        str | None, typer.Option(help="Trace database (path or postgresql:// URL) to add to; default: the data dir's.")
    ] = None,
) -> None:
    """Add an export's runs, calls, node runs and feedback; rows already present are skipped."""
    from graphroute.scaleout import open_trace_store
    from graphroute.traces.transfer import import_jsonl

    console = _console()
    with _errors(console):
        store = open_trace_store(into)
        added = import_jsonl(store, file)
    console.print("added " + ", ".join(f"{count} {table}" for table, count in added.items()) + f" → {store.path}")


def export_preferences(
    traces: TracesArg = None,
    out: Annotated[Path, typer.Option(help="JSONL file of {prompt, chosen, rejected} pairs.")] = Path("pairs.jsonl"),
    outcomes: Annotated[Path | None, typer.Option(help="Known results (JSONL) to rank answers by.")] = None,
    margin: Annotated[float, typer.Option(help="Minimum score difference for a pair.")] = 0.0,
    fmt: Annotated[str, typer.Option("--format", help="chat (messages) or text.")] = "chat",
) -> None:
    """Preference pairs where two models answered the same request and scores rank them."""
    from graphroute.traces.outcomes import load_outcomes
    from graphroute.traces.preferences import export_preferences as write_pairs

    console = _console()
    with _errors(console):
        if fmt not in ("chat", "text"):
            raise ConfigError(f"unknown format {fmt!r}; use chat or text")
        extra = load_outcomes(outcomes) if outcomes else []
        count = write_pairs(_open(traces), out, outcomes=extra, margin=margin, fmt=fmt)  # type: ignore[arg-type]
    console.print(f"{count} preference pairs → {out}")


def feedback(
    run_id: Annotated[str, typer.Argument(help="The run to score (app.last_run.run_id).")],
    score: Annotated[float, typer.Argument(help="0 (bad) … 1 (good).")],
    node: Annotated[str | None, typer.Option(help="Score only this node of the run.")] = None,
    comment: Annotated[str | None, typer.Option(help="Free text kept with the score.")] = None,
    traces: Annotated[
        str | None, typer.Option(help="Trace database (path or postgresql:// URL); default: the data dir's.")
    ] = None,
) -> None:
    """Record feedback on a run (or one node of it); the bandit, planner and exports read it."""
    from graphroute.feedback import feedback as give_feedback
    from graphroute.scaleout import open_existing_trace_store

    console = _console()
    with _errors(console):
        # A file must already hold the run: never create an empty one.
        record = give_feedback(run_id, score, node=node, comment=comment, traces=open_existing_trace_store(traces))
    console.print(f"feedback {record.score:g} on run {run_id}" + (f" node {node}" if node else ""))


COMMANDS: dict[str, Callable[..., None]] = {
    "replay": replay,
    "report": report,
    "export": export,
    "import": import_,
    "export-preferences": export_preferences,
    "feedback": feedback,
}


def register(app: typer.Typer) -> None:
    for name, command in COMMANDS.items():
        app.command(name)(command)
