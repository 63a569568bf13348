"""RouteLLM's metrics (APGR, CPT 20/50/80 %) for graphroute's semantic router on GSM8K and MMLU.

One command:  .venv/bin/python benchmarks/routellm_eval.py --json OUT
Encoders side by side:  ... --encoder static minilm  (default: the library's default encoder)

Data: RouteLLM's per-question outcomes (lm-sys/RouteLLM, Apache-2.0, commit 0b64fdaf,
``routellm/evals/``) in ``../shared/data/routellm``, decontaminated the way RouteLLM's own
evaluation does it (MMLU 14,037 rows, GSM8K 1,307). Strong: gpt-4-1106-preview; weak:
Mixtral-8x7B-Instruct-v0.1.

Protocol: in-domain, cross-validated. Each benchmark's questions are split into 5 folds (a
question never straddles folds); a router is fitted on 4 folds and scores the 5th, and the
pooled out-of-fold scores go through RouteLLM's threshold sweep. RouteLLM's published routers
were trained on other data (Chatbot Arena), so this is not a like-for-like comparison with
their figures: it measures what graphroute does when it has labelled data from the same
distribution. Baselines in the same run: random scores (mean of 10 seeds), prompt length,
and the per-question oracle.

Every router configuration runs on each ``--encoder`` given, on the same folds. MiniLM
embeddings are cached on disk (``$GRAPHROUTE_HOME/embeddings``): the first run embeds ~15k
prompts (up to an hour on two loaded cores), later runs take seconds for that step. The static
encoder needs no cache (seconds for all prompts; distilled once on first use, 1–3 minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from graphroute.evaluation.data import OutcomeTable, load_routellm_csv
from graphroute.evaluation.metrics import group_folds, oracle_curve, random_summary, routing_curve
from graphroute.evaluation.training import (
    DEFAULT_ENCODER,
    DEFAULT_ROUTER,
    find_training_data,
    make_estimator,
    reference_tiers,
)
from graphroute.pillars.encoders import (
    ENCODER_ALIASES,
    SHAPE_DIM,
    SHAPE_WEIGHT,
    encoder_for,
    encoder_name,
    normalise,
    shape_features,
)
from graphroute.pillars.problem_features import PROBLEM_DIM, problem_features
from graphroute.pillars.semantic import SemanticRouter

LABEL = "in-domain, cross-validated (5 folds by question)"
SOURCE = "lm-sys/RouteLLM routellm/evals (Apache-2.0, commit 0b64fdaf), decontaminated"
BENCHMARKS = ("gsm8k", "mmlu")

# name → (estimator kind, features appended: "", "+shape" or "+shape2"), each scored by expected
# strong-over-weak gain (what `graphroute score` outputs). "graphroute" repeats the configuration
# `graphroute train` fits; "difficulty" is that configuration ranked by 1 − P(weak ok) (the
# pillar's difficulty).
CANDIDATES: dict[str, tuple[str, str]] = {
    "knn": ("knn", ""),
    "logistic": ("logistic", ""),
    "knn+shape": ("knn", "+shape"),
    "logistic+shape": ("logistic", "+shape"),
    "logistic+shape2": ("logistic", "+shape2"),
}

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


def features(base: np.ndarray, shape: np.ndarray, problem: np.ndarray, suffix: str) -> np.ndarray:
    """The vectors ``ShapeEncoder`` would produce for ``suffix``, built from parts computed once."""
    if not suffix:
        return base
    parts = [base, SHAPE_WEIGHT * shape] + ([SHAPE_WEIGHT * problem] if suffix == "+shape2" else [])
    return normalise(np.hstack(parts))


def cross_validated(table: OutcomeTable, x: np.ndarray, kind: str, folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold (score, difficulty) per row, computed by the same ``SemanticRouter`` code
    that ``graphroute score`` and the pillar run."""
    weak, strong = reference_tiers(table)
    scores, difficulty = np.zeros(len(table)), np.zeros(len(table))
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        estimator = make_estimator(kind).fit(x[train], table.outcomes[train], table.models)
        router = SemanticRouter(estimator, encoder_name="benchmark", weak=weak, strong=strong)
        estimates = router.estimates(x[test])
        scores[test], difficulty[test] = router.score_from(estimates), router.difficulty_from(estimates)
    return scores, difficulty


def evaluate(table: OutcomeTable, base: np.ndarray, *, seed: int) -> dict[str, dict[str, float]]:
    (weak_model,), (strong_model,) = reference_tiers(table)
    weak, strong = table.column(weak_model), table.column(strong_model)
    shape, problem = shape_features(table.prompts), problem_features(table.prompts)
    folds = group_folds(table.prompts, 5, seed=seed)
    results: dict[str, dict[str, float]] = {}
    for name, (kind, suffix) in CANDIDATES.items():
        started = time.perf_counter()
        scores, difficulty = cross_validated(table, features(base, shape, problem, suffix), kind, folds)
        results[name] = routing_curve(scores, weak, strong).summary()
        results[name]["seconds"] = time.perf_counter() - started
        if (kind, suffix) == DEFAULT_ROUTER:
            results["graphroute"] = dict(results[name])
            results["difficulty"] = routing_curve(difficulty, weak, strong).summary()
    lengths = np.array([len(p) for p in table.prompts], dtype=float)
    results["length"] = routing_curve(lengths, weak, strong).summary()
    results["random"] = random_summary(weak, strong, seeds=10)
    results["oracle"] = oracle_curve(weak, strong).summary()
    return {"graphroute": results.pop("graphroute"), **results}


def print_table(name: str, table: OutcomeTable, results: dict[str, dict[str, float]]) -> None:
    accuracy = table.accuracy()
    print(
        f"\n{name.upper()} — {LABEL}; {len(table)} questions; "
        + ", ".join(f"{m.split('/')[-1]} {a:.3f}" for m, a in accuracy.items())
    )
    print(f"  {'router':<16}{'APGR':>7}{'CPT20%':>9}{'CPT50%':>9}{'CPT80%':>9}  vs random CPT50")
    random_cpt50 = results["random"]["cpt50"]
    for router, figures in results.items():
        ratio = figures["cpt50"] / random_cpt50
        print(
            f"  {router:<16}{figures['apgr']:>7.3f}{figures['cpt20']:>9.1f}{figures['cpt50']:>9.1f}"
            f"{figures['cpt80']:>9.1f}  ×{ratio:.2f}"
        )


def short(name: str) -> str:
    """``static`` / ``minilm`` for the shipped encoders, else the full name."""
    return next((alias for alias, full in ENCODER_ALIASES.items() if full == name), name)


def print_comparison(output: dict[str, dict[str, dict[str, dict[str, float]]]]) -> None:
    """The default configuration's figures per encoder, side by side, with the change vs the first."""
    encoders = list(output)
    print(f"\nencoders side by side (graphroute configuration; Δ vs {short(encoders[0])}):")
    for bench in output[encoders[0]]:
        first = output[encoders[0]][bench]["graphroute"]
        for name in encoders:
            figures = output[name][bench]["graphroute"]
            delta = figures["apgr"] - first["apgr"]
            print(
                f"  {bench:<6} {short(name):<8} APGR {figures['apgr']:.3f} ({delta:+.3f})  "
                f"CPT50 {figures['cpt50']:5.1f} %  ({figures['embed_seconds']:.1f} s to embed)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--data", type=Path, help="shared/data directory (default: found next to the project)")
    parser.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    parser.add_argument("--benchmarks", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument(
        "--encoder",
        nargs="+",
        default=[short(DEFAULT_ENCODER)],
        help=f"sentence encoder(s) to compare: {', '.join(ENCODER_ALIASES)} or a full name "
        f"(default: the library default, {short(DEFAULT_ENCODER)})",
    )
    args = parser.parse_args(argv)
    data = args.data or find_training_data()
    if data is None or not (data / "routellm").is_dir():
        print("error: RouteLLM data not found; pass --data /path/to/shared/data", file=sys.stderr)
        return 1
    print(f"graphroute routing quality on RouteLLM's benchmarks — {LABEL}\nsource: {SOURCE}")
    names = [encoder_name(name) for name in args.encoder]
    tables = {name: load_routellm_csv(data / "routellm" / name) for name in args.benchmarks}
    output: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for name in names:
        encoder = encoder_for(name)
        output[name] = {}
        for bench, table in tables.items():
            started = time.perf_counter()
            base = encoder.encode(table.prompts)
            elapsed = time.perf_counter() - started
            print(f"\n[{short(name)}] {bench}: embedded {len(table)} prompts with {name} in {elapsed:.1f}s")
            results = evaluate(table, base, seed=args.seed)
            results["graphroute"]["embed_seconds"] = elapsed
            print_table(f"{bench} [{short(name)}]", table, results)
            output[name][bench] = results
    if len(names) > 1:
        print_comparison(output)
    for name in names:
        figures = {n: output[name][n]["graphroute"] for n in output[name]}
        goal = {n: f["cpt50"] <= 30 and f["apgr"] >= 0.65 for n, f in figures.items()}
        print(
            f"goal CPT50 ≤ 30 % and APGR ≥ 0.65 ({LABEL}) with {short(name)}: "
            + ", ".join(f"{n} {'met' if ok else 'NOT met'}" for n, ok in goal.items())
        )
    print(
        f"graphroute = {DEFAULT_ROUTER[0]} with features '{DEFAULT_ROUTER[1]}' on each encoder "
        f"(SHAPE_DIM={SHAPE_DIM}, PROBLEM_DIM={PROBLEM_DIM}); library default encoder: {DEFAULT_ENCODER}; "
        "CPT in % of calls to the strong model"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {**output[names[0]], "encoder": names[0], "by_encoder": output}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
