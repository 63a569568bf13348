"""``graphroute serve``: the OpenAI-compatible router on a local port.

FastAPI and uvicorn come with the ``server`` extra and are imported only when the command
runs, so ``graphroute --help`` stays fast and works without them.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from graphroute.errors import GraphRouteError

TOKEN_ENV = "GRAPHROUTE_SERVER_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    pool: Annotated[Path | None, typer.Option(help="Pool TOML; default: the embedded local model.")] = None,
    host: Annotated[str, typer.Option(help="Address to bind; other machines reach it only if you widen it.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENV,
            show_default=False,
            help=f"Require 'Authorization: Bearer <token>' on /v1 requests (or set {TOKEN_ENV}).",
        ),
    ] = None,
    traces: Annotated[Path | None, typer.Option(help="Trace database; default: in the data dir.")] = None,
    warm: Annotated[bool, typer.Option(help="Start local model servers before accepting requests.")] = True,
) -> None:
    """Serve the pool behind OpenAI's chat-completions API (model: a pool name or router-<policy>)."""
    console = Console(stderr=True)
    try:
        from graphroute.server import create_app, require_server_extra

        require_server_extra()
        import uvicorn

        app = create_app(pool, traces=traces, token=token or None, warm=warm, stop_local_servers=True)
    except GraphRouteError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    if not token and not is_loopback(host):
        console.print(
            f"[yellow]warning:[/yellow] serving on {escape(host)} without a token: anyone who can reach this "
            f"address can spend your model budget. Pass --token or set {TOKEN_ENV}."
        )
    models = ", ".join(spec.name for spec in app.state.graphroute.pool)
    console.print(f"graphroute serving http://{escape(host)}:{port}/v1 · models: {escape(models)} · router-default")
    uvicorn.run(app, host=host, port=port, log_level="info")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
