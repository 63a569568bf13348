"""The ``graphroute`` command line; one module per command group, registered here."""

from __future__ import annotations

import typer

from graphroute.cli import demo as _demo

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Plan and route the model calls of LangGraph apps.")


@app.callback()
def _root() -> None:
    """Plan and route the model calls of LangGraph apps."""


app.command("demo")(_demo.demo)


def main() -> None:
    app()
