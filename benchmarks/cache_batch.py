"""Caching and batching benchmark: what reuse saves on the real local model.

Run: ``python benchmarks/cache_batch.py --json cache_batch.json`` (``GRAPHROUTE_HOME`` as usual;
the packaged Qwen2.5-Coder-0.5B is served by a managed llama.cpp server with 8 parallel slots).

1. **Cold vs warm demo app.** The example research assistant (plan → Send fan-out → report
   subgraph), every node on the local model, run once with an empty cache (cold), then again
   with a fresh ``optimize()`` on the same cache directory (warm), then in a fresh process
   (warm, persisted), then with node caching off but the response cache on. Goal: warm ≥ 20×
   faster than cold, with identical output.
2. **32-way Send fan-out, 25 % exact duplicates** (24 unique capital-city questions, 8 repeats,
   shuffled) against the local llama.cpp server: one by one (``max_concurrency=1``), all at once
   without the batcher (LangGraph as is), and all at once with the batcher. Goal: calls sent =
   unique requests, batcher wall ≤ 0.5× one by one, same answers.
3. **Cache lookup overhead per node.** A 20-node chain of trivial nodes: a plain node call next
   to the node-cache hit path (our ``DiskNodeCache``, LangGraph's ``InMemoryCache``, and the full
   optimized app with tracing), all measured in this run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.messages import HumanMessage, SystemMessage  # noqa: E402
from langchain_ollama import ChatOllama  # noqa: E402
from langgraph.cache.memory import InMemoryCache  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import CachePolicy, Send  # noqa: E402

from graphroute import ModelPool, optimize  # noqa: E402
from graphroute.batching import BatchConfig  # noqa: E402
from graphroute.cache import CacheConfig, DiskNodeCache  # noqa: E402
from graphroute.cli.demo import DEFAULT_QUESTION, load_example  # noqa: E402

# A generous timeout: on a busy 2-core machine, 32 requests queued at 8 slots can wait minutes,
# and a baseline must not fail merely for queueing.
LOCAL_MODEL = {"provider": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct", "timeout_s": 900}
LOCAL_POOL = {"routing": {"default": "local"}, "models": {"local": LOCAL_MODEL}}
COUNTRIES = """France Japan Peru Italy Spain Germany Egypt Kenya Chile Canada Norway Greece Poland Turkey India China
Brazil Mexico Cuba Ireland Portugal Austria Sweden Ghana""".split()  # noqa: SIM905


def pool() -> ModelPool:
    return ModelPool.from_dict(LOCAL_POOL)


# -- 1. cold vs warm demo app -------------------------------------------------------------------
def demo_run(cache: CacheConfig, traces: Path) -> tuple[float, dict[str, Any], dict[str, int], int]:
    graph = load_example("research_assistant").build_graph()
    app = optimize(graph, pool=pool(), cache=cache, traces=traces)
    started = time.perf_counter()
    result = app.invoke({"question": DEFAULT_QUESTION})
    seconds = time.perf_counter() - started
    assert app.last_run is not None
    sent = sum(1 for call in app.last_run.calls if not (call.cache_hit or call.deduped))
    return seconds, result, app.last_run.cache.as_dict(), sent


def bench_demo(work: Path) -> dict[str, Any]:
    cache = CacheConfig(path=work / "demo-cache")
    traces = work / "demo.sqlite"
    pool().client("local")  # start the server first: cold measures the run, not the server start
    cold_s, cold, cold_stats, cold_sent = demo_run(cache, traces)
    warm_s, warm, warm_stats, warm_sent = demo_run(cache, traces)
    done = subprocess.run(
        [sys.executable, __file__, "--demo-warm-process", str(work)], capture_output=True, text=True, check=True
    )
    other = json.loads(done.stdout.strip().splitlines()[-1])
    responses_s, responses, responses_stats, responses_sent = demo_run(
        CacheConfig(path=work / "demo-cache", nodes=()), traces
    )
    return {
        "cold_s": cold_s,
        "cold_model_calls": cold_sent,
        "cold_stats": cold_stats,
        "warm_s": warm_s,
        "warm_model_calls": warm_sent,
        "warm_stats": warm_stats,
        "warm_speedup": cold_s / warm_s,
        "warm_identical_output": warm == cold,
        "warm_new_process_s": other["seconds"],
        "warm_new_process_speedup": cold_s / other["seconds"],
        "warm_new_process_identical_output": other["result"] == json.loads(json.dumps(cold)),
        "responses_only_s": responses_s,
        "responses_only_model_calls": responses_sent,
        "responses_only_stats": responses_stats,
        "responses_only_speedup": cold_s / responses_s,
        "responses_only_identical_output": responses == cold,
        "report_title": cold.get("title"),
    }


def demo_warm_process(work: Path) -> None:
    seconds, result, stats, sent = demo_run(CacheConfig(path=work / "demo-cache"), work / "demo.sqlite")
    print(json.dumps({"seconds": seconds, "result": result, "stats": stats, "sent": sent}))


# -- 2. fan-out with duplicates ---------------------------------------------------------------
class Fan(TypedDict, total=False):
    countries: list[str]
    answers: Annotated[list[tuple[int, str, str]], lambda a, b: a + b]


def fan_out(state: Fan) -> list[Send]:
    return [Send("capital", {"index": i, "country": c}) for i, c in enumerate(state["countries"])]


async def capital(task: dict[str, Any]) -> Fan:
    llm = ChatOllama(model="llama3.1:8b", temperature=0, num_predict=12)
    reply = await llm.ainvoke(
        [SystemMessage("Reply with the city name only."), HumanMessage(f"What is the capital of {task['country']}?")]
    )
    return {"answers": [(task["index"], task["country"], str(reply.content).strip())]}


def fan_graph() -> StateGraph:
    graph = StateGraph(Fan)
    graph.add_node("capital", capital)
    graph.add_conditional_edges(START, fan_out, ["capital"])
    graph.add_edge("capital", END)
    return graph


def fan_tasks(width: int, duplicate_share: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    duplicates = round(width * duplicate_share)
    unique = COUNTRIES[: width - duplicates]
    tasks = unique + [rng.choice(unique) for _ in range(duplicates)]
    rng.shuffle(tasks)
    return tasks


async def fan_run(mode: str, tasks: list[str], traces: Path) -> dict[str, Any]:
    batching = BatchConfig(window_ms=10) if mode == "batcher" else None
    app = optimize(fan_graph(), pool=pool(), batching=batching, traces=traces)
    config = {"max_concurrency": 1} if mode == "one_by_one" else {}
    started = time.perf_counter()
    result = await app.ainvoke({"countries": tasks}, config)
    seconds = time.perf_counter() - started
    assert app.last_run is not None
    calls = app.last_run.calls
    answers = {country: answer for _, country, answer in result["answers"]}
    return {
        "wall_s": seconds,
        "calls_sent": sum(1 for call in calls if not (call.cache_hit or call.deduped)),
        "deduped": sum(1 for call in calls if call.deduped),
        "batched": sum(1 for call in calls if call.batched),
        "answers": answers,
        "duplicates_agree": all(answer == answers[country] for _, country, answer in result["answers"]),
    }


async def bench_fanout(work: Path, width: int, duplicate_share: float, repeats: int) -> dict[str, Any]:
    """One event loop for every run: the HTTP clients of the pool stay on it."""
    tasks = fan_tasks(width, duplicate_share, seed=7)
    await fan_run("batcher", tasks[:4], work / "warmup.sqlite")  # warm the server's slots once
    runs: dict[str, list[dict[str, Any]]] = {"one_by_one": [], "concurrent": [], "batcher": []}
    orders = [("one_by_one", "batcher", "concurrent"), ("batcher", "concurrent", "one_by_one")]
    for repeat in range(repeats):
        for mode in orders[repeat % 2]:  # alternate the order: load drifts on a shared machine
            runs[mode].append(await fan_run(mode, tasks, work / f"fan-{mode}.sqlite"))
    wall = {mode: statistics.median(run["wall_s"] for run in done) for mode, done in runs.items()}
    base, batched = runs["one_by_one"][0]["answers"], runs["batcher"][0]["answers"]
    return {
        "width": width,
        "unique_requests": len(set(tasks)),
        "repeats": repeats,
        "wall_s": wall,
        "wall_runs_s": {mode: [run["wall_s"] for run in done] for mode, done in runs.items()},
        "calls_sent": {mode: done[0]["calls_sent"] for mode, done in runs.items()},
        "deduped": {mode: done[0]["deduped"] for mode, done in runs.items()},
        "batched": {mode: done[0]["batched"] for mode, done in runs.items()},
        "batcher_vs_one_by_one": wall["batcher"] / wall["one_by_one"],
        "concurrent_vs_one_by_one": wall["concurrent"] / wall["one_by_one"],
        "batcher_vs_concurrent": wall["batcher"] / wall["concurrent"],
        "same_answers_as_one_by_one": sum(base[c] == batched[c] for c in base),
        "different_answers": {c: [base[c], batched[c]] for c in base if base[c] != batched[c]},
        "questions": len(base),
        "duplicates_get_identical_answers": all(run["duplicates_agree"] for run in runs["batcher"]),
        "answers_batcher": batched,
    }


# -- 3. lookup overhead per node --------------------------------------------------------------
class Chain(TypedDict):
    x: int


def chain(nodes: int) -> StateGraph:
    def make(step: int) -> Any:
        def node(state: Chain) -> Chain:
            return {"x": state["x"] + step}

        return node

    graph = StateGraph(Chain)
    names = [f"n{i}" for i in range(nodes)]
    for i, name in enumerate(names):
        graph.add_node(name, make(i))
    for source, target in zip([START, *names], [*names, END], strict=True):
        graph.add_edge(source, target)
    return graph


def per_node_ms(invoke: Any, nodes: int, rounds: int) -> float:
    invoke()  # fill caches / warm imports
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        invoke()
        timings.append((time.perf_counter() - started) * 1000 / nodes)
    return statistics.median(timings)


def bench_overhead(work: Path, nodes: int = 20, rounds: int = 30) -> dict[str, Any]:
    plain = chain(nodes).compile()

    def with_backend(cache: Any) -> Any:
        graph = chain(nodes)
        for name in graph.nodes:
            graph.nodes[name].cache_policy = CachePolicy()
        return graph.compile(cache=cache)

    disk, memory = with_backend(DiskNodeCache(work / "overhead-disk")), with_backend(InMemoryCache())
    unused = ModelPool.from_dict(
        {"models": {"m": {"provider": "openai-compatible", "model": "x", "base_url": "http://127.0.0.1:9/v1"}}}
    )
    optimized_plain = optimize(chain(nodes), pool=unused, traces=work / "overhead.sqlite")
    optimized_cached = optimize(
        chain(nodes), pool=unused, cache=CacheConfig(path=work / "overhead-opt"), traces=work / "overhead.sqlite"
    )
    lookup = DiskNodeCache(work / "overhead-raw")
    key = (("__pregel_ns_writes", "bench.node", "node"), "k" * 32)
    lookup.set({key: ([("x", 1)], None)})
    started = time.perf_counter()
    for _ in range(2000):
        lookup.get([key])
    raw_get_ms = (time.perf_counter() - started) * 1000 / 2000
    result = {
        "nodes": nodes,
        "plain_node_ms": per_node_ms(lambda: plain.invoke({"x": 0}), nodes, rounds),
        "disk_cache_hit_ms": per_node_ms(lambda: disk.invoke({"x": 0}), nodes, rounds),
        "memory_cache_hit_ms": per_node_ms(lambda: memory.invoke({"x": 0}), nodes, rounds),
        "optimized_plain_node_ms": per_node_ms(lambda: optimized_plain.invoke({"x": 0}), nodes, rounds),
        "optimized_cache_hit_ms": per_node_ms(lambda: optimized_cached.invoke({"x": 0}), nodes, rounds),
        "raw_disk_get_ms": raw_get_ms,
    }
    result["disk_hit_vs_plain"] = result["disk_cache_hit_ms"] / result["plain_node_ms"]
    result["optimized_hit_vs_optimized_plain"] = result["optimized_cache_hit_ms"] / result["optimized_plain_node_ms"]
    return result


# -- report -------------------------------------------------------------------------------------
def show(results: dict[str, Any]) -> None:
    if demo := results.get("demo"):
        print("1. demo app, cold vs warm (local Qwen2.5-Coder-0.5B)")
        print(f"   cold {demo['cold_s']:.2f} s ({demo['cold_model_calls']} model calls)")
        for label, key in (
            ("warm", "warm"),
            ("warm, new process", "warm_new_process"),
            ("responses only", "responses_only"),
        ):
            print(
                f"   {label:<18} {demo[key + '_s']:.3f} s  {demo[key + '_speedup']:.0f}× faster  "
                f"identical output: {demo[key + '_identical_output']}"
            )
    if fan := results.get("fanout"):
        print(f"2. {fan['width']}-way fan-out, {fan['unique_requests']} unique (median of {fan['repeats']})")
        for mode in ("one_by_one", "concurrent", "batcher"):
            print(
                f"   {mode:<11} {fan['wall_s'][mode]:6.2f} s  sent {fan['calls_sent'][mode]:2d}  "
                f"deduped {fan['deduped'][mode]:2d}  batched {fan['batched'][mode]:2d}"
            )
        same = f"{fan['same_answers_as_one_by_one']}/{fan['questions']}"
        print(
            f"   batcher / one by one = {fan['batcher_vs_one_by_one']:.2f}; concurrent / one by one = "
            f"{fan['concurrent_vs_one_by_one']:.2f}; same answers {same}"
        )
    if over := results.get("overhead"):
        print(f"3. per node, {over['nodes']}-node chain (ms)")
        for key in (
            "plain_node_ms",
            "disk_cache_hit_ms",
            "memory_cache_hit_ms",
            "optimized_plain_node_ms",
            "optimized_cache_hit_ms",
            "raw_disk_get_ms",
        ):
            print(f"   {key:<26} {over[key]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--duplicates", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip", nargs="*", default=[], choices=["demo", "fanout", "overhead"])
    parser.add_argument("--demo-warm-process", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.demo_warm_process:
        demo_warm_process(args.demo_warm_process)
        return
    results: dict[str, Any] = {"command": " ".join(["python", "benchmarks/cache_batch.py", *sys.argv[1:]])}
    with tempfile.TemporaryDirectory(prefix="cache-batch-") as tmp:
        work = Path(tmp)
        if "overhead" not in args.skip:
            results["overhead"] = bench_overhead(work)
        if "demo" not in args.skip:
            results["demo"] = bench_demo(work)
        if "fanout" not in args.skip:
            results["fanout"] = asyncio.run(bench_fanout(work, args.width, args.duplicates, args.repeats))
    show(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
