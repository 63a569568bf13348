"""Server overhead: one chat completion through ``graphroute serve`` vs straight to the model.

Run: ``python benchmarks/server_overhead.py [--requests 40] [--write-results]``

Four paths, interleaved request by request so they see the same machine load, each sending the
same short prompt with ``max_tokens=1`` (so the model's own work is small and the overhead
shows):

- ``local model, direct``: the ``openai`` client straight to the managed llama.cpp server;
- ``local model, via server``: the same client to graphroute's server, ``model="router-default"``
  (route, trace, forward, translate back);
- ``scripted upstream, direct`` / ``via server``: the same pair against a scripted
  OpenAI-compatible provider that answers instantly, isolating graphroute's own overhead
  from the model's variance.

Prints p50/p99 per path and the added milliseconds (server minus direct) per pair.
"""

from __future__ import annotations

import argparse
import random
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402

from graphroute.providers.pool import ModelPool  # noqa: E402
from graphroute.server import create_app  # noqa: E402
from graphroute.testing import ScriptedProvider  # noqa: E402

NAME = "server_overhead"
PROMPT = [{"role": "user", "content": "Reply with the single word: yes"}]


@contextmanager
def serving(pool: ModelPool, traces: Path) -> Iterator[str]:
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(pool, traces=traces), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per path")
    parser.add_argument("--write-results", action="store_true", help="update this section of benchmarks/RESULTS.md")
    args = parser.parse_args()

    local_pool = ModelPool.default()
    llama = local_pool.client("local")  # starts the managed llama.cpp server
    direct_local = openai.OpenAI(base_url=str(llama.openai_api_base), api_key="unused", max_retries=0)
    with ScriptedProvider() as scripted, tempfile.TemporaryDirectory() as tmp:
        scripted_pool = ModelPool.from_dict({"models": {"scripted": scripted.pool_entry(locality="local")}})
        direct_scripted = openai.OpenAI(base_url=scripted.base_url, api_key="unused", max_retries=0)
        with (
            serving(local_pool, Path(tmp) / "a.sqlite") as local_url,
            serving(scripted_pool, Path(tmp) / "b.sqlite") as scripted_url,
        ):
            via_local = openai.OpenAI(base_url=local_url, api_key="unused", max_retries=0)
            via_scripted = openai.OpenAI(base_url=scripted_url, api_key="unused", max_retries=0)

            def ask(client: openai.OpenAI, model: str) -> Callable[[], object]:
                return lambda: client.chat.completions.create(model=model, messages=PROMPT, max_tokens=1)  # type: ignore[arg-type]

            paths = {
                "local model, direct": ask(direct_local, "local"),
                "local model, via server": ask(via_local, "router-default"),
                "scripted upstream, direct": ask(direct_scripted, "scripted"),
                "scripted upstream, via server": ask(via_scripted, "router-default"),
            }
            for call in paths.values():  # warm-up: connections, first-request imports, prompt cache
                call()
            samples: dict[str, list[float]] = {name: [] for name in paths}
            order = list(paths)
            rng = random.Random(0)
            for _ in range(args.requests):
                rng.shuffle(order)
                for name in order:
                    samples[name].append(timed(paths[name]))

    lines = [
        f"## {NAME}",
        "",
        f"`python benchmarks/server_overhead.py --requests {args.requests}` — same prompt, max_tokens=1, "
        "paths interleaved in one run (2 shared cores; absolute times vary with load, compare within a run).",
        "",
        "| path | p50 ms | p99 ms |",
        "|---|---:|---:|",
    ]
    for name, values in samples.items():
        lines.append(f"| {name} | {statistics.median(values):.1f} | {percentile(values, 0.99):.1f} |")
    lines.append("")
    for kind in ("local model", "scripted upstream"):
        direct, via = samples[f"{kind}, direct"], samples[f"{kind}, via server"]
        added = statistics.median(via) - statistics.median(direct)
        ratio = statistics.median(via) / statistics.median(direct)
        lines.append(f"- {kind}: the server adds {added:.1f} ms at p50 ({ratio:.2f}× the direct call)")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write_results:
        write_section(ROOT / "benchmarks" / "RESULTS.md", report)


def write_section(path: Path, section: str) -> None:
    """Replace (or append) this benchmark's section, leaving every other section untouched."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^## {NAME}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if not pattern.search(text):
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(pattern.sub(lambda _: section + "\n", text), encoding="utf-8")


if __name__ == "__main__":
    main()
