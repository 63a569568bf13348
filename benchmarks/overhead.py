"""Overhead benchmark: how long a routing decision takes, next to one local model call.

Run: ``python benchmarks/overhead.py --json overhead.json``

Paths, each timed as a whole ``CascadeRouter.route`` call (pillars + ladder + bookkeeping):

- ``rules``: the rules pillar only, timed in its own block, and again interleaved with the
  semantic path (where torch's worker threads compete for the cores);
- ``rules+semantic``: rules, then the semantic pillar (MiniLM + kNN on the default router)
  whenever rules are unsure. Timed on prompts the embedding cache has never seen (an
  uncached encoder), and separately on a repeated prompt (a cache hit);
- ``full cascade with judge``: rules → semantic → judge with ``exit_confidence`` above 1, so
  the judge (the local model) is always asked — its worst case;
- ``local model call``: one short chat completion to the same local model, in the same run,
  interleaved with the judge decisions so both see the same machine load.

Prompts: real questions from RouteLLM's GSM8K and MMLU files (shared/data, Apache-2.0) plus
short chat lines. Goals: rules p50 ≤ 0.05 ms; with semantic p50 ≤ 5 ms, p99 ≤ 25 ms.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.messages import HumanMessage  # noqa: E402

from graphroute.pillars.base import RouteRequest  # noqa: E402
from graphroute.pillars.judge import JudgePillar  # noqa: E402
from graphroute.pillars.rules import RulesPillar  # noqa: E402
from graphroute.providers.pool import ModelPool  # noqa: E402
from graphroute.routing.cascade import CascadeRouter  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "routellm"
CHAT = (
    "Hi!",
    "Thanks, that helps.",
    "Summarise the meeting notes above in three bullet points.",
    "What's the weather like on Mars?",
    "Translate 'see you tomorrow' into French.",
)


def prompts(count: int, seed: int) -> list[str]:
    """A fixed mix of maths word problems, multiple-choice questions and chat lines."""
    csv.field_size_limit(sys.maxsize)
    rows: list[str] = []
    for path in [DATA / "gsm8k" / "gsm8k_responses.csv", *sorted((DATA / "mmlu").glob("mmlu_*.csv"))[:8]]:
        with path.open(encoding="utf-8", newline="") as handle:
            rows.extend(record["prompt"] for record in csv.DictReader(handle))
    rng = random.Random(seed)
    chosen = rng.sample(rows, count - count // 5) + [rng.choice(CHAT) + f" ({i})" for i in range(count // 5)]
    rng.shuffle(chosen)
    return chosen


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    at = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {"n": len(ordered), "p50_ms": at(0.50), "p99_ms": at(0.99), "mean_ms": statistics.fmean(ordered)}


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def request(text: str) -> RouteRequest:
    return RouteRequest(messages=[HumanMessage(text)], node="answer")


def semantic_pillar(router_dir: str, cached: bool):  # type: ignore[no-untyped-def]
    """The semantic pillar on the given router, with the router's encoder behind or without the cache."""
    from graphroute.pillars import encoders
    from graphroute.pillars.semantic import SemanticPillar, resolve_router

    router = resolve_router(router_dir)
    encoder = encoders.encoder_for(router.encoder_name)
    if not cached:  # the same encoder, minus the embedding cache: every prompt is embedded for real
        base = encoders.MiniLMEncoder()
        encoder = encoders.ShapeEncoder(base) if router.encoder_name.endswith("+shape") else base
    return SemanticPillar(router, encoder=encoder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--decisions", type=int, default=400, help="decisions per cheap path")
    parser.add_argument("--model-calls", type=int, default=30, help="judge decisions and local calls")
    parser.add_argument("--router", default="default", help="semantic router directory (default: trained on first use)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pool = ModelPool.default()
    texts = prompts(args.decisions, args.seed)
    results: dict[str, dict[str, float]] = {}

    rules = CascadeRouter(pool, [RulesPillar()])
    uncached = semantic_pillar(args.router, cached=False)
    with_semantic = CascadeRouter(pool, [RulesPillar(), uncached])
    cached_semantic = CascadeRouter(pool, [RulesPillar(), semantic_pillar(args.router, cached=True)])
    warm = request("Warm-up: what is the capital of Peru?")
    for router in (rules, with_semantic, cached_semantic):  # load models, JIT paths, fill the one cache entry
        for _ in range(3):
            router.route(warm)

    # Rules alone first, in their own block: a rules-only deployment has no torch threads
    # around, and torch's workers keep spinning for a while after each encode.
    requests = [request(text) for text in texts]
    samples: dict[str, list[float]] = {"rules": [timed(lambda one=one: rules.route(one)) for one in requests]}
    samples.update({"rules (interleaved with semantic)": [], "rules+semantic": [], "rules+semantic (cache hit)": []})
    semantic_asked = 0
    for one in requests:  # interleaved, so these paths see the same load
        samples["rules (interleaved with semantic)"].append(timed(lambda: rules.route(one)))  # noqa: B023
        decision = None

        def decide(one: RouteRequest = one) -> None:
            nonlocal decision
            decision = with_semantic.route(one)

        samples["rules+semantic"].append(timed(decide))
        semantic_asked += any(s.pillar == "semantic" for s in decision.signals)  # type: ignore[attr-defined]
        samples["rules+semantic (cache hit)"].append(timed(lambda: cached_semantic.route(warm)))
    for name, values in samples.items():
        results[name] = percentiles(values)
    results["rules+semantic"]["semantic_asked_share"] = semantic_asked / len(texts)

    judge = JudgePillar(pool)
    full = CascadeRouter(pool, [RulesPillar(), uncached, judge], exit_confidence=1.01)  # judge always asked
    client = pool.client(judge.model)
    call_kwargs = {"temperature": 0, "extra_body": {"max_tokens": 16}}
    question = [HumanMessage("What is 2 + 2? Reply with the number.")]
    full.route(warm)
    client.invoke("Say OK.", **call_kwargs)
    judge_ms: list[float] = []
    judge_only_ms: list[float] = []
    call_ms: list[float] = []
    for text in texts[: args.model_calls]:
        one = request(text)
        decision = full.route(one)
        judge_ms.append(decision.latency_ms)
        judge_only_ms.extend(s.latency_ms for s in decision.signals if s.pillar == "judge")  # type: ignore[attr-defined]
        call_ms.append(timed(lambda: client.invoke(question, **call_kwargs)))
    results["full cascade with judge"] = percentiles(judge_ms)
    results["judge pillar alone"] = percentiles(judge_only_ms)
    results["local model call"] = percentiles(call_ms)

    local_p50 = results["local model call"]["p50_ms"]
    print(f"decision overhead vs one local model call (p50 {local_p50:.0f} ms), same run:")
    for name, figures in results.items():
        ratio = figures["p50_ms"] / local_p50 if local_p50 else float("nan")
        figures["p50_vs_local_call"] = ratio
        print(
            f"  {name:<34} p50 {figures['p50_ms']:9.3f} ms  p99 {figures['p99_ms']:9.3f} ms  "
            f"({100 * ratio:.2f} % of a local call; n={figures['n']:.0f})"
        )
    goals = {
        "rules p50 <= 0.05 ms": results["rules"]["p50_ms"] <= 0.05,
        "rules+semantic p50 <= 5 ms": results["rules+semantic"]["p50_ms"] <= 5,
        "rules+semantic p99 <= 25 ms": results["rules+semantic"]["p99_ms"] <= 25,
    }
    for goal, met in goals.items():
        print(f"  goal {goal}: {'met' if met else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "goals": goals}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
