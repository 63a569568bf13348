"""``graphroute score``: one difficulty score per prompt, for evaluation tools (exact interface).

Input: JSON lines ``{"prompt": "..."}`` (blank lines skipped). Output: JSON lines
``{"score": s}`` in the same order, ``s`` in [0, 1], higher = needs the stronger model: the
router's expected gain of its strong tier over its weak tier, ``(1 + P(strong ok) − P(weak
ok)) / 2`` (see ``graphroute.pillars.semantic``). ``--router default`` uses the
default router, trained on first use (see ``graphroute.evaluation.training``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer

from graphroute.errors import ConfigError, GraphRouteError

BATCH = 512


def read_prompts(handle: TextIO, source: str) -> Iterator[str]:
    """Prompts from JSON lines, with the line number in any error."""
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ConfigError(f"line {number}: not valid JSON ({error.msg})", path=source) from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise ConfigError(f'line {number}: expected an object with a string "prompt"', path=source)
        yield record["prompt"]


def score_file(router_spec: str, source: TextIO, sink: TextIO, source_name: str) -> int:
    """Score every prompt of ``source`` into ``sink``; returns how many."""
    from graphroute.pillars.semantic import resolve_router

    router = resolve_router(router_spec)
    encoder = router.encoder()  # the one it was trained with, checked against its probe vectors
    count = 0
    batch: list[str] = []

    def flush() -> None:
        for value in router.score(encoder.encode(batch)):
            sink.write(json.dumps({"score": round(float(value), 6)}) + "\n")
        batch.clear()

    for prompt in read_prompts(source, source_name):
        batch.append(prompt)
        count += 1
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return count


def score(
    router: Annotated[str, typer.Option(help="Router directory from `graphroute train`, or 'default'.")],
    input_path: Annotated[Path, typer.Option("--input", help="JSON lines {\"prompt\": ...}; '-' for stdin.")],
    output_path: Annotated[Path, typer.Option("--output", help="JSON lines {\"score\": s}; '-' for stdout.")],
) -> None:
    """Score prompts in [0, 1]: higher means the prompt needs the stronger model."""
    try:
        source = sys.stdin if str(input_path) == "-" else input_path.open(encoding="utf-8")
    except FileNotFoundError:
        typer.echo(f"error: {input_path}: file not found", err=True)
        raise typer.Exit(1) from None
    try:
        if str(output_path) == "-":
            count = score_file(router, source, sys.stdout, str(input_path))
        else:
            output_path.parent.mkdir(parents=True, exist_ok=True)
            partial = output_path.with_name(output_path.name + ".partial")
            with partial.open("w", encoding="utf-8") as sink:
                count = score_file(router, source, sink, str(input_path))
            partial.replace(output_path)
    except GraphRouteError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        if source is not sys.stdin:
            source.close()
    typer.echo(f"scored {count} prompts → {output_path}", err=True)


def register(app: typer.Typer) -> None:
    app.command("score")(score)
