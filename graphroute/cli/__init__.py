"""The ``graphroute`` command line; one module per command group.

Each module in ``COMMAND_MODULES`` exposes ``register(app)``; importing them lazily keeps
``graphroute --help`` fast and lets a command's heavy dependencies load only when it runs.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES: tuple[str, ...] = ("demo", "traces", "inspect", "plan", "train", "score", "serve")

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Plan and route the model calls of LangGraph apps.")


@app.callback()
def _root() -> None:
    """Plan and route the model calls of LangGraph apps."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"graphroute.cli.{_name}").register(app)


def main() -> None:
    app()
