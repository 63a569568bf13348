"""``graphroute demo``: run the example research assistant under ``optimize`` and show the bill."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from graphroute.config import LlamaCppOptions
from graphroute.errors import GraphRouteError
from graphroute.optimize import RunTrace, optimize
from graphroute.providers.pool import ModelPool

STAND_IN_LABEL = "cloud stand-in"
DEFAULT_QUESTION = "Why is the sky blue, and why are sunsets red?"


def examples_dir() -> Path:
    """The example apps: shipped inside the wheel, or at the root of a source checkout."""
    for candidate in (Path(__file__).parents[1] / "_examples", Path(__file__).parents[2] / "examples"):
        if (candidate / "research_assistant.py").exists():
            return candidate
    raise GraphRouteError("cannot find the example apps (examples/research_assistant.py); reinstall graphroute")


def load_example(name: str) -> ModuleType:
    path = examples_dir() / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"graphroute_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def with_cloud_stand_in(pool: ModelPool) -> ModelPool:
    """Serve every cloud model whose key is unset from a second local server, labelled as such.

    The stand-in keeps the cloud model's prices, so the bill shows what the run would cost
    with the real provider, while no key is needed and nothing leaves the machine.
    """
    from graphroute.providers.llamacpp import get_server
    from graphroute.providers.local_models import DEFAULT_LOCAL_MODEL, resolve_gguf

    missing = [spec for spec in pool.cloud() if spec.api_key_env and not os.environ.get(spec.api_key_env)]
    if not missing:
        return pool
    # Different options than the local tier's server, so this is a second process and endpoint.
    server = get_server(resolve_gguf(DEFAULT_LOCAL_MODEL), LlamaCppOptions(parallel=4, context_size=4096))
    for spec in missing:
        pool = pool.replace(
            spec.name, provider="openai-compatible", base_url=server.base_url, api_key_env=None, label=STAND_IN_LABEL
        )
    return pool


def model_label(pool: ModelPool, name: str, *, short: bool = False) -> str:
    spec = pool[name]
    if not spec.label:
        return name
    return f"{name}*" if short else f"{name} ({spec.label})"


def bill_table(pool: ModelPool, trace: RunTrace) -> Table:
    """Per node: model, calls, tokens, latency, cost, and the all-cloud cost of the same calls."""
    priciest = max(pool.cloud() or list(pool), key=lambda spec: spec.input_price + spec.output_price)
    table = Table(title=f"Run {trace.run_id[:8]} — per node", title_justify="left")
    for column in ("node", "model", "calls", "in tok", "out tok", "latency s", "cost $", "all-cloud $"):
        left = column in ("node", "model")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    totals = [0, 0, 0, 0.0, 0.0, 0.0]
    for node, calls in trace.by_node().items():
        models = sorted({model_label(pool, call.model, short=True) for call in calls})
        tokens_in = sum(call.input_tokens for call in calls)
        tokens_out = sum(call.output_tokens for call in calls)
        latency = sum(call.latency_ms for call in calls) / 1000
        cost = sum(call.cost_usd for call in calls)
        all_cloud = priciest.cost(tokens_in, tokens_out)
        for index, value in enumerate((len(calls), tokens_in, tokens_out, latency, cost, all_cloud)):
            totals[index] += value
        table.add_row(
            node,
            ", ".join(models),
            str(len(calls)),
            str(tokens_in),
            str(tokens_out),
            f"{latency:.1f}",
            f"{cost:.6f}",
            f"{all_cloud:.6f}",
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        str(totals[0]),
        str(totals[1]),
        str(totals[2]),
        f"{totals[3]:.1f}",
        f"{totals[4]:.6f}",
        f"{totals[5]:.6f}",
        style="bold",
    )
    labels = sorted({f"{spec.name}* = {spec.label}" for spec in pool if spec.label})
    table.caption = "\n".join(
        [
            *labels,
            f"all-cloud = the same tokens at {priciest.name}'s prices "
            f"(${priciest.input_price}/M in, ${priciest.output_price}/M out)",
        ]
    )
    table.caption_justify = "left"
    return table


def demo(
    question: Annotated[str, typer.Option(help="What to ask the research assistant.")] = DEFAULT_QUESTION,
    pool: Annotated[Path | None, typer.Option(help="Pool TOML; default: examples/graphroute.toml.")] = None,
    traces: Annotated[Path | None, typer.Option(help="Trace database; default: in the data dir.")] = None,
) -> None:
    """Run the example research assistant, every model call routed, and print its bill."""
    # Logs and CI capture are not terminals: give the table room instead of rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=120)
    try:
        model_pool = with_cloud_stand_in(ModelPool.from_toml(pool or examples_dir() / "graphroute.toml"))
        example = load_example("research_assistant")
        app = optimize(example.build_graph(), pool=model_pool, traces=traces)
        console.print(f"[bold]Question:[/bold] {question}")
        for spec in model_pool:
            where = spec.base_url or "managed llama.cpp server"
            console.print(f"  model [cyan]{model_label(model_pool, spec.name)}[/cyan]: {spec.provider} · {where}")
        started = time.perf_counter()
        result = app.invoke({"question": question})
        elapsed = time.perf_counter() - started
    except GraphRouteError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    assert app.last_run is not None
    console.print(f"\n[bold]{result.get('title', '')}[/bold]\n{result.get('report', '')}\n")
    console.print(bill_table(model_pool, app.last_run))
    console.print(
        f"{len(app.last_run.calls)} routed calls in {elapsed:.1f}s · trace: {app.store.path} "
        f"(run {app.last_run.run_id})"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
