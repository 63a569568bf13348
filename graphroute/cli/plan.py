"""``graphroute plan module:attr`` and ``graphroute calibrate module:attr``: the holistic plan.

``plan`` prints, per node, the ladder of models by difficulty with its thresholds, the expected
calls, cost and success, for a per-run budget or a target cloud share. ``calibrate`` solves the
same plan and prints what a per-call threshold setup needs: per node, the difficulty from which
calls go to a cloud model (RouteLLM's calibration, done per node and for the whole run).
Both learn the app's profile from traces when there are any.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from graphroute.errors import ConfigError, GraphRouteError

if TYPE_CHECKING:
    from graphroute.planning.plan import Plan

Target = Annotated[str, typer.Argument(help="The app: package.module:attr or path/to/file.py:attr.")]
Budget = Annotated[float | None, typer.Option("--budget", help="Expected USD per run to plan for.")]
CloudShare = Annotated[float | None, typer.Option("--cloud-share", help="Share of calls on cloud models, 0–1.")]
PoolOption = Annotated[Path | None, typer.Option(help="Pool TOML; default: graphroute.toml here or by the app.")]
TracesOption = Annotated[
    str | None, typer.Option(help="Trace database (path or postgresql:// URL) to learn the app's profile from.")
]
PinOption = Annotated[
    list[str] | None,
    typer.Option("--pin", help="Keep a node on a model, node=model (repeatable); adds to the pool file's pins."),
]


def _console() -> Console:
    return Console() if sys.stdout.isatty() else Console(width=160)


def _checked_target(budget: float | None, share: float | None) -> None:
    """The same limits ``optimize`` puts on budget_usd and cloud_share, named as the options."""
    from graphroute.planning.targets import check_targets

    if (budget is None) == (share is None):
        raise ConfigError("give exactly one of --budget USD (per run) or --cloud-share 0..1")
    check_targets(budget, share, budget_name="--budget", share_name="--cloud-share")


def _solve_or_exit(
    console: Console,
    target: str,
    pool: Path | None,
    traces: str | None,
    budget: float | None,
    share: float | None,
    pins: list[str] | None = None,
) -> Plan:
    """The plan, with the pool it used printed first; or our error in red and exit status 1 (never a traceback)."""
    from graphroute.cli.inspect import default_pool, load_target, node_models
    from graphroute.graph.identity import node_ids, pin_targets, pins_within
    from graphroute.planning.live import plan_app
    from graphroute.providers.pool import ModelPool
    from graphroute.scaleout import open_existing_trace_store

    try:
        _checked_target(budget, share)
        pool_path = pool or default_pool(target)
        model_pool = ModelPool.from_toml(pool_path) if pool_path else ModelPool.default()
        store = open_existing_trace_store(traces) if traces else None
        app = load_target(target)
        nodes = node_ids(app)
        given = node_models(pins or [], nodes, option="--pin")
        pinned = {**pins_within(model_pool.routing.nodes, pin_targets(nodes)), **given}
        plan = plan_app(app, model_pool, budget_usd=budget, cloud_share=share, traces=store, pins=pinned)
    except GraphRouteError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    used = str(pool_path) if pool_path else "the built-in default (no graphroute.toml here or beside the app)"
    console.print(f"pool: {escape(used)}")
    return plan


def plan_command(
    target: Target,
    budget: Budget = None,
    cloud_share: CloudShare = None,
    pool: PoolOption = None,
    traces: TracesOption = None,
    pin: PinOption = None,
) -> None:
    """Print the plan: per node its ladder, thresholds, expected calls, cost and success."""
    console = _console()
    plan = _solve_or_exit(console, target, pool, traces, budget, cloud_share, pin)
    table = Table(title=f"plan for {target}")
    for column in ("node", "calls/run", "cost/run $", "success", "value", "ladder (by difficulty)"):
        table.add_column(column, justify="left" if column in ("node", "ladder (by difficulty)") else "right")
    for row in plan.rows():
        table.add_row(
            str(row["node"]),
            f"{row['calls']:.2f}",
            f"{row['cost_usd']:.6f}",
            f"{row['success']:.3f}",
            f"{row['value']:.3f}",
            escape(str(row["ladder"])),
        )
    console.print(table)
    _print_summary(console, plan)


def calibrate_command(
    target: Target,
    budget: Budget = None,
    cloud_share: CloudShare = None,
    pool: PoolOption = None,
    traces: TracesOption = None,
    pin: PinOption = None,
) -> None:
    """Per node, the difficulty threshold from which calls go to a cloud model."""
    console = _console()
    plan = _solve_or_exit(console, target, pool, traces, budget, cloud_share, pin)
    from graphroute.planning.calibration import cloud_thresholds

    table = Table(title=f"calibrated thresholds for {target}")
    for column in ("node", "cloud when difficulty ≥", "cloud share"):
        table.add_column(column, justify="left" if column == "node" else "right")
    for row in cloud_thresholds(plan):
        threshold = row["threshold"]
        table.add_row(
            str(row["node"]), "never" if threshold is None else f"{threshold:.3f}", f"{row['cloud_share']:.0%}"
        )
    console.print(table)
    _print_summary(console, plan)


def _print_summary(console: Console, plan: Plan) -> None:
    """The plan's expected cost, success and λ, then its notes (pins, loops, where profiles came from)."""
    console.print(escape(str(plan).splitlines()[-1 - len(plan.notes)]))
    for note in plan.notes:
        console.print(escape(note))


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)
    app.command("calibrate")(calibrate_command)
