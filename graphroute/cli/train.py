"""``graphroute train``: fit a semantic router from outcome data and save it as a directory.

Accepts both public formats (RouteLLM two-model CSVs, LLMRouter ``train.json`` with its
``models.json``), as files or directories, in any mix. ``--default`` (re)builds the default
router in the data dir from ``shared/data`` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from graphroute.errors import ConfigError, GraphRouteError


def train(
    data: Annotated[
        list[Path] | None, typer.Option("--data", help="Outcome files or directories (repeatable).")
    ] = None,
    more: Annotated[list[Path] | None, typer.Argument(help="More data paths (so `--data a b` works).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Router directory to write.")] = None,
    estimator: Annotated[str, typer.Option(help="knn or logistic.")] = "knn",
    k: Annotated[int | None, typer.Option("--k", help="Neighbours for --estimator knn (default 100).")] = None,
    stack: Annotated[
        bool,
        typer.Option(
            "--stack",
            help="Re-read each model's success from every model's estimate (a cross-fitted second stage; "
            "worth it over knn, not over logistic).",
        ),
    ] = False,
    fit_to: Annotated[
        str,
        typer.Option(
            "--fit-to",
            help="What the estimator learns: score (partial credit counts fractionally) or success "
            "(a full score; what a plan's runs count).",
        ),
    ] = "score",
    encoder: Annotated[
        str, typer.Option(help="Sentence encoder: static (default, ~0.2 ms a prompt) or minilm (a transformer).")
    ] = "static",
    weak: Annotated[
        list[str] | None, typer.Option("--weak", help="Reference weak model(s); default: cheapest per source.")
    ] = None,
    default: Annotated[bool, typer.Option("--default", help="Rebuild the default router from shared/data.")] = False,
) -> None:
    """Fit a router on per-question outcomes and save it (use it with `graphroute score --router DIR`)."""
    from graphroute.evaluation.data import FIT_TARGETS, load_outcomes
    from graphroute.evaluation.training import (
        default_router,
        default_router_dir,
        make_estimator,
        train_router,
        training_encoder,
    )
    from graphroute.pillars.estimators import StackedSuccessEstimator

    try:
        if default:
            router = default_router(rebuild=True)
            target = default_router_dir()
        else:
            paths = [*(data or []), *(more or [])]
            if not paths or out is None:
                typer.echo("error: pass --data PATH... and --out DIR (or --default)", err=True)
                raise typer.Exit(2)
            if fit_to not in FIT_TARGETS:
                raise ConfigError(f"--fit-to {fit_to!r}: use {' or '.join(FIT_TARGETS)}")
            if k is not None and (estimator != "knn" or k < 1):
                raise ConfigError(f"--k {k}: needs --estimator knn and at least one neighbour")
            table = load_outcomes(paths)
            if fit_to == "success":
                table = table.successes()
            typer.echo(f"embedding {len(table)} prompts × {len(table.models)} models...", err=True)
            params = {} if k is None else {"k": float(k)}
            base = make_estimator(estimator, **params)
            router = train_router(
                table,
                encoder=training_encoder(base=encoder),
                estimator=StackedSuccessEstimator.over(base) if stack else base,
                weak=weak,
            )
            router.metadata["fitted_to"] = fit_to
            target = router.save(out)
    except GraphRouteError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"router saved to {target}: {router.estimator.kind}, {len(router.models)} models, "
        f"weak tier {', '.join(router.weak)}"
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
