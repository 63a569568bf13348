"""Overhead benchmark: how long a routing decision takes, next to one local model call.

Run: ``python benchmarks/overhead.py --json overhead.json``
Encoders side by side: ``... --encoder static minilm`` (default: the library's default encoder).

Paths, each timed as a whole ``CascadeRouter.route`` call (pillars + ladder + bookkeeping):

- ``rules``: the rules pillar only, timed in its own block, and again interleaved with the
  semantic paths (where torch's worker threads compete for the cores);
- ``rules+semantic [ENCODER]``: rules, then the semantic pillar (the default router's
  configuration, trained with that encoder) whenever rules are unsure. Timed on prompts the
  encoder has never seen (no embedding cache), once in the encoder's own block and once
  interleaved with the other encoders; and on a repeated prompt (for MiniLM a cache hit);
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


def router_for(encoder: str, router_dir: str):  # type: ignore[no-untyped-def]
    """The router to time with ``encoder``: ``--router`` when it was trained with that encoder, else
    the default configuration trained with it on shared/data (once, kept in the data dir)."""
    from graphroute.evaluation.data import load_outcomes
    from graphroute.evaluation.training import DEFAULT_ROUTER, find_training_data, train_router, training_encoder
    from graphroute.paths import data_dir
    from graphroute.pillars.semantic import ROUTER_FILE, SemanticRouter, resolve_router

    wanted = training_encoder(DEFAULT_ROUTER[1], base=encoder)
    if router_dir != "default":
        router = resolve_router(router_dir)
        if router.encoder_name == wanted.name:
            return router
    elif wanted.name == training_encoder().name:
        return resolve_router("default")
    directory = data_dir() / "routers" / f"overhead-{wanted.name}"
    if not (directory / ROUTER_FILE).exists():
        source = find_training_data()
        print(f"training a router with {wanted.name} from {source} (once, into {directory})...", file=sys.stderr)
        train_router(load_outcomes([source]), encoder=wanted).save(directory)
    return SemanticRouter.load(directory)


def semantic_pillar(router, cached: bool):  # type: ignore[no-untyped-def]
    """The semantic pillar on ``router`` with its own encoder, behind the embedding cache or without it."""
    from graphroute.pillars import encoders
    from graphroute.pillars.semantic import SemanticPillar

    encoder = encoders.encoder_for(router.encoder_name)
    base_name, suffix = encoders.split_shape(router.encoder_name)
    if not cached and base_name == encoders.MINILM_NAME:  # MiniLM minus its cache: every prompt embedded for real
        base = encoders.MiniLMEncoder()
        encoder = encoders.ShapeEncoder(base, problem=suffix == encoders.SHAPE2_SUFFIX) if suffix else base
    return SemanticPillar(router, encoder=encoder)  # the static encoder has no cache to skip


def main() -> None:
    from graphroute.evaluation.training import DEFAULT_ENCODER
    from graphroute.pillars.encoders import ENCODER_ALIASES, encoder_name

    def short(name: str) -> str:
        return next((alias for alias, full in ENCODER_ALIASES.items() if full == name), name)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--decisions", type=int, default=400, help="decisions per cheap path")
    parser.add_argument("--model-calls", type=int, default=30, help="judge decisions and local calls (0: skip)")
    parser.add_argument("--router", default="default", help="semantic router directory (default: trained on first use)")
    parser.add_argument(
        "--encoder",
        nargs="+",
        default=[short(DEFAULT_ENCODER)],
        help=f"encoder(s) for the semantic path: {', '.join(ENCODER_ALIASES)} (default: {short(DEFAULT_ENCODER)})",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pool = ModelPool.default()
    texts = prompts(args.decisions, args.seed)
    results: dict[str, dict[str, float]] = {}
    labels = [short(encoder_name(name)) for name in args.encoder]

    rules = CascadeRouter(pool, [RulesPillar()])
    uncached: dict[str, object] = {}
    semantic: dict[str, CascadeRouter] = {}
    repeated: dict[str, CascadeRouter] = {}
    for label in labels:
        router = router_for(label, args.router)
        uncached[label] = semantic_pillar(router, cached=False)
        semantic[label] = CascadeRouter(pool, [RulesPillar(), uncached[label]])  # type: ignore[list-item]
        repeated[label] = CascadeRouter(pool, [RulesPillar(), semantic_pillar(router, cached=True)])
    warm = request("Warm-up: what is the capital of Peru?")
    for cascade in (rules, *semantic.values(), *repeated.values()):  # load models, fill the one cache entry
        for _ in range(3):
            cascade.route(warm)

    # Rules alone first, then each encoder in its own block: a deployment runs one encoder, and
    # torch's workers keep spinning for a while after each MiniLM encode.
    requests = [request(text) for text in texts]
    samples: dict[str, list[float]] = {"rules": [timed(lambda one=one: rules.route(one)) for one in requests]}
    asked: dict[str, int] = dict.fromkeys(labels, 0)
    for label, cascade in semantic.items():
        samples[f"rules+semantic [{label}]"] = [timed(lambda one=one: cascade.route(one)) for one in requests]  # noqa: B023
    interleaved = len(labels) > 1
    samples["rules (interleaved with semantic)"] = []
    for label in labels:
        if interleaved:
            samples[f"rules+semantic [{label}] (interleaved)"] = []
        samples[f"rules+semantic [{label}] (repeated prompt)"] = []
    for one in requests:  # interleaved, so these paths see the same load
        samples["rules (interleaved with semantic)"].append(timed(lambda: rules.route(one)))  # noqa: B023
        for label in labels:
            decision = None

            def decide(one: RouteRequest = one, label: str = label) -> None:
                nonlocal decision
                decision = semantic[label].route(one)

            elapsed = timed(decide)
            if interleaved:
                samples[f"rules+semantic [{label}] (interleaved)"].append(elapsed)
            asked[label] += any(s.pillar == "semantic" for s in decision.signals)  # type: ignore[attr-defined]
            samples[f"rules+semantic [{label}] (repeated prompt)"].append(timed(lambda: repeated[label].route(warm)))  # noqa: B023
    for name, values in samples.items():
        results[name] = percentiles(values)
    for label in labels:
        results[f"rules+semantic [{label}]"]["semantic_asked_share"] = asked[label] / len(texts)

    if args.model_calls > 0:
        judge = JudgePillar(pool)
        full = CascadeRouter(pool, [RulesPillar(), uncached[labels[0]], judge], exit_confidence=1.01)  # type: ignore[list-item]
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
        results[f"full cascade with judge [{labels[0]}]"] = percentiles(judge_ms)
        results["judge pillar alone"] = percentiles(judge_only_ms)
        results["local model call"] = percentiles(call_ms)

    local_p50 = results["local model call"]["p50_ms"] if "local model call" in results else float("nan")
    print(f"decision overhead vs one local model call (p50 {local_p50:.0f} ms), same run:")
    for name, figures in results.items():
        ratio = figures["p50_ms"] / local_p50 if local_p50 else float("nan")
        figures["p50_vs_local_call"] = ratio
        print(
            f"  {name:<44} p50 {figures['p50_ms']:9.3f} ms  p99 {figures['p99_ms']:9.3f} ms  "
            f"({100 * ratio:.2f} % of a local call; n={figures['n']:.0f})"
        )
    goals = {"rules p50 <= 0.05 ms": results["rules"]["p50_ms"] <= 0.05}
    for label in labels:
        figures = results[f"rules+semantic [{label}]"]
        goals[f"rules+semantic [{label}] p50 <= 5 ms"] = figures["p50_ms"] <= 5
        goals[f"rules+semantic [{label}] p99 <= 25 ms"] = figures["p99_ms"] <= 25
    for goal, met in goals.items():
        print(f"  goal {goal}: {'met' if met else 'NOT met'}")
    if args.json:
        document = {"results": results, "goals": goals, "encoders": [encoder_name(label) for label in labels]}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
