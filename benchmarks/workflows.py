"""Workflow benchmark: the holistic plan against per-call routing, on LangGraph workflows whose
every model call is a real question with real per-model outcomes.

    python benchmarks/workflows.py --outcomes ../shared/data/llmrouter/train.json \\
        --models ../shared/data/llmrouter/models.json --seeds 5 --json OUT [--plot PNG]

``--outcomes``: any file in LLMRouter's ``train.json`` format (``question``, ``cluster_id``,
``scores``: model → 0/1); ``--models``: a file in its ``models.json`` format (prices per 1M
tokens, ``size``). Source of the bundled data: ulab-uiuc/LLMRouter (MIT), see shared/data.

Workflows (real ``StateGraph``s; a node's "model call" asks the strategy's ``Router`` for a
model, then looks the question's outcome up for that model):

- chain: plan → solve → check → answer; the run succeeds only if every step does;
- map_reduce: planner → 6 parallel workers (``Send``) → aggregate; succeeds if planner and
  aggregate succeed and at least 4 of 6 workers do;
- critic_loop: solve → critic; the critic catches a wrong answer when it answers its own
  question correctly and sends it back (at most 2 retries, each a new question); the run
  succeeds if the final answer is right. A right answer is always accepted.

The planner reads each workflow's shape from the compiled app as ``optimize`` does for a
user's app (``graphroute.planning.shape``: steps, the retry loop); only the quorum (4 of 6)
and the loop's bound (3 answers), rules inside the apps' functions, are declared.

Each run is one task from one task cluster (drawn in proportion to the test split): every node's
question is drawn from that cluster. Questions are split into train/test by question (seeded,
50/50); the success estimator and every plan are fitted on train only; runs use test questions
only (those scored for every model: estimators learn from whatever was measured). Every strategy
routes by the same estimates: the semantic pillar's, as ``graphroute train --encoder minilm
--estimator knn --k 30 --fit-to success --stack`` fits them (kNN over MiniLM embeddings + shape
features, learning from full scores — the success the runs count — rather than partial credit,
under a cross-fitted second stage that re-reads each model's success from every model's
estimate). The kNN is the best-calibrated estimator on this data (RESULTS.md, "Estimator
choice"); the stage sharpens the gaps between models, which is what routing reads, and is what
made the plan cheaper on held-out halves of the data ("Stacked estimates"). ``--no-stack`` gives
the plain kNN; the library's per-call default (``--encoder static --estimator logistic
--fit-to score --no-stack``, chosen for a 5 ms routing latency) is one flag set away.

Cost of a call: input tokens of the question (tiktoken cl100k_base) × input price + a fixed
output-token count per node type (``OUTPUT_TOKENS``) × output price.

Strategies: holistic (``PlannedRouter`` over a λ grid; its plans carry a ``Carryover`` fitted on
train, so a critic's rejection rescales the run's next estimates), per_call (``PerCallRouter``,
one global λ, every call alone — a retry is a fresh call), llmselector (greedy per-node
assignment), random (strong with probability s, else cheap), and the points all_cloud (the
model with the best mean success on train, every call), all_local (the cheapest local-tier
model — 7–12B, every call) and oracle (cheapest correct model per call).

The λ sweep: holistic and per_call start from the same geometric grid of ``--points`` settings;
then, ``--refine`` times, a setting is added at the geometric midpoint of any two neighbouring
settings whose seed-averaged costs differ by more than ``REFINE_GAP`` times — the same rule for
both, every seed running every setting — so neither curve's hull has a chord where the other has
points only because of where the grid fell. The settings are listed in the JSON's
``meta.lambdas``.

Strategy settings run on worker processes (``--jobs``, default one per core up to 8; forked, so
every worker has the seeds' splits and estimators without rebuilding them). A setting's figures
depend only on its seed and setting, so any number of jobs gives the same figures.

The plan learns its run contexts (what kind of task a run's calls suggest) and, by default,
a recalibration of each call's estimates per context from the file's ``cluster_id``.
``--no-task-labels`` hides those labels from it, as traces hide them from ``optimize``: one
run context, no recalibration (``Carryover`` still learns from which calls share a run).
``--latent-contexts`` (with ``--no-task-labels``) gives the plan run contexts learnt without
labels, from how the training split's runs went (``LatentContexts``: a latent-class model over
training runs drawn one cluster each, as the test runs are, and cut to the workflow's run size).

``--traces DIR`` (optional) also writes seed 0's runs of every strategy setting for
``graphroute replay``: a trace database, an outcome file, a pool and the benchmark's own
figures per setting (see ``workflow_traces.py``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing
import operator
import os
import sys
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Annotated, Any, TypedDict

import numpy as np
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workflow_traces import Call, TraceWriter
from graphroute.evaluation.data import FIT_TARGETS, full_success, load_llmrouter_json
from graphroute.evaluation.training import make_estimator, training_encoder
from graphroute.graph import inspect
from graphroute.pillars.base import RouteRequest
from graphroute.pillars.encoders import ENCODER_ALIASES
from graphroute.pillars.semantic import BASE_KINDS, StackedSuccessEstimator
from graphroute.planning import curves
from graphroute.planning.baselines import (
    OracleRouter,
    PerCallRouter,
    RandomRouter,
    assignment_router,
    llmselector,
)
from graphroute.planning.carryover import Carryover
from graphroute.planning.context import ContextCalibration
from graphroute.planning.latent import LatentContexts
from graphroute.planning.plan import NodeDemand
from graphroute.planning.pricing import CallCoster, PoolPrices, TokenCounter
from graphroute.planning.router import RUN_ID_KEY, PlannedRouter
from graphroute.planning.shape import infer_workflow
from graphroute.planning.solver import solve
from graphroute.planning.structure import Quorum, Retry, Step, Workflow
from graphroute.routing.static import StaticRouter

# Output tokens per call, by node type (a plan, a worked solution, a short verdict, ...).
OUTPUT_TOKENS = {
    "chain": {"plan": 200, "solve": 400, "check": 100, "answer": 150},
    "map_reduce": {"planner": 200, "worker": 300, "aggregate": 400},
    "critic_loop": {"solve": 400, "critic": 100},
}
# What the planner cannot read from a graph's code: map_reduce needs 4 of its 6 workers (a
# quorum), and the critic loop's bound of 3 answers (its routing function's rule). The rest of
# each workflow's shape — steps, the Send fan-out's width, the solver/critic retry loop — is
# read from the compiled LangGraph app by the library (``graphroute.planning.shape``).
QUORUMS = {"map_reduce": {"worker": 4}}
ATTEMPTS = 3
QUESTIONS_PER_RUN = {
    "chain": {"plan": 1, "solve": 1, "check": 1, "answer": 1},
    "map_reduce": {"planner": 1, "worker": 6, "aggregate": 1},
    "critic_loop": {"solve": ATTEMPTS, "critic": ATTEMPTS},
}
WORKFLOWS = tuple(QUESTIONS_PER_RUN)
LOCAL_MAX_BILLION = 20.0
# Test runs per strategy setting per seed, per workflow. A run's success is 0 or 1, so a point's
# success carries a noise of about √(p(1 − p) / (runs · seeds)); the figures compare costs at equal
# success, so what counts is that noise against the workflow's success range (all-local → best).
# chain and map_reduce span ≈ 0.13, critic_loop only ≈ 0.08: at 1200 runs its low end, where cost
# climbs ≈ 1,000 µ$ per unit of success, read a 0.002 success difference (a third of the noise)
# as a 3.6 % cost ratio. critic_loop gets 3× the runs (√3 less noise, about the others' precision
# relative to its range); its runs are the cheapest (2–6 calls). See RESULTS.md.
RUNS = {"chain": 1200, "map_reduce": 1200, "critic_loop": 3600}
# The λ-swept strategies, and how their shared λ list is refined: a setting is added between two
# neighbours whose seed-averaged costs differ by more than REFINE_GAP×, REFINE_ROUNDS times.
SWEPT = ("holistic", "per_call")
REFINE_GAP = 1.25
REFINE_ROUNDS = 2
# Worker processes by default: one per core, up to this many.
MAX_JOBS = 8
# The success estimator every strategy shares (--encoder / --estimator / --knn-k / --fit-to /
# --stack): kNN, the best calibrated on a development split (log-loss 0.515 against the per-call
# default's 0.553), under the stacked second stage. The stage was adopted for what it did on two
# halves of train.json standing in for unseen files: every saving and cost to match all-cloud
# better, every worst ratio ≤ 1.02 (the plain kNN missed critic_loop's on both); on train.json
# itself the plan matches all-cloud for 0.34 / 0.30 / 0.21 of its cost against 0.41 / 0.37 / 0.25
# (RESULTS.md). The estimates are shared by every strategy, so per-call routing gains from them too.
DEFAULT_BENCH_ENCODER = "minilm"
DEFAULT_BENCH_ESTIMATOR = "knn"
DEFAULT_KNN_K = 30
DEFAULT_FIT_TO = "success"
DEFAULT_STACK = True
# Cross-fitting folds of the training split's estimates (what the planner learns from).
FOLDS = 5
# Whether the plan reads a call's estimates in the light of the run's context (--recalibrate):
# per task cluster and model a Platt map fitted on the training split, mixed by the run's
# context posterior (``ContextCalibration``; only the plan: it is what the run knows). On by
# default since the run-context model is fitted on distinct calls (commit 318e1d5): on train.json
# chain's saving 0.046 → 0.058 and cost to match all-cloud 0.342 → 0.309, map_reduce's 0.284 →
# 0.270; on the held-out halves chain's saving 0.088 and 0.126 with worst ratios ≤ 1.02 (before
# the fix it cost chain there: RESULTS.md, "Context recalibration"). critic_loop is unaffected.
DEFAULT_RECALIBRATE = True
# Whether the plan may read the data's task labels (``cluster_id``) at all (--task-labels): its run
# contexts (``ContextModel``) and the recalibration are fitted on them. ``optimize`` plans from
# traces, which name no kind of task, so --no-task-labels is what a user's app gets: one run
# context, no recalibration; ``Carryover`` still learns from which calls share a run (here the
# cluster a run is drawn from, in a deployment its traced runs).
DEFAULT_TASK_LABELS = True
# Without task labels, whether the plan learns run contexts from training runs' outcomes
# (--latent-contexts): what ``optimize`` could get from traced runs scored by feedback. Off by
# default: it stands in for the labels, which the default reads.
DEFAULT_LATENT_CONTEXTS = False


class RunState(TypedDict, total=False):
    run_id: str
    task: dict[str, list[int]]
    calls: Annotated[list[Call], operator.add]
    verdict: str


class Harness:
    """Turns a node's model call into a routed outcome lookup."""

    def __init__(self, prompts: list[str], outcomes: np.ndarray, coster: CallCoster) -> None:
        self.prompts, self.outcomes, self.coster = prompts, outcomes, coster
        self.index = {m: j for j, m in enumerate(coster.prices.models)}

    def call(self, config: Any, run_id: str, node: str, qid: int, **meta: Any) -> Call:
        router = config["configurable"]["router"]
        request = RouteRequest(
            [HumanMessage(self.prompts[qid])], node=node, metadata={RUN_ID_KEY: run_id, "qid": qid, **meta}
        )
        model = router.route(request).model
        j = self.index[model]
        cost = float(self.coster(self.prompts[qid], node)[j])
        return (node, model, bool(self.outcomes[qid, j] == 1), cost, qid)


def build_graph(name: str, harness: Harness) -> Any:
    """The workflow as a compiled LangGraph app."""
    graph = StateGraph(RunState)
    if name == "chain":
        steps = list(OUTPUT_TOKENS["chain"])
        for step in steps:
            graph.add_node(
                step,
                lambda s, config, step=step: {"calls": [harness.call(config, s["run_id"], step, s["task"][step][0])]},
            )
        for a, b in zip([START, *steps], [*steps, END], strict=True):
            graph.add_edge(a, b)
    elif name == "map_reduce":
        graph.add_node(
            "planner",
            lambda s, config: {"calls": [harness.call(config, s["run_id"], "planner", s["task"]["planner"][0])]},
        )
        graph.add_node("worker", lambda w, config: {"calls": [harness.call(config, w["run_id"], "worker", w["qid"])]})
        graph.add_node(
            "aggregate",
            lambda s, config: {"calls": [harness.call(config, s["run_id"], "aggregate", s["task"]["aggregate"][0])]},
        )
        graph.add_edge(START, "planner")
        graph.add_conditional_edges(
            "planner",
            lambda s: [Send("worker", {"run_id": s["run_id"], "qid": q}) for q in s["task"]["worker"]],
            ["worker"],
        )
        graph.add_edge("worker", "aggregate")
        graph.add_edge("aggregate", END)
    else:

        def solve_node(s: RunState, config: RunnableConfig) -> dict[str, Any]:
            attempt = sum(1 for c in s["calls"] if c[0] == "solve")
            return {"calls": [harness.call(config, s["run_id"], "solve", s["task"]["solve"][attempt])]}

        def critic_node(s: RunState, config: RunnableConfig) -> dict[str, Any]:
            answers = [c for c in s["calls"] if c[0] == "solve"]
            right = answers[-1][2]
            call = harness.call(config, s["run_id"], "critic", s["task"]["critic"][len(answers) - 1], answer_ok=right)
            return {"calls": [call], "verdict": "reject" if (call[2] and not right) else "accept"}

        def again(s: RunState) -> str:
            attempts = sum(1 for c in s["calls"] if c[0] == "solve")
            return "solve" if s["verdict"] == "reject" and attempts < ATTEMPTS else END

        graph.add_node("solve", solve_node)
        graph.add_node("critic", critic_node)
        graph.add_edge(START, "solve")
        graph.add_edge("solve", "critic")
        graph.add_conditional_edges("critic", again, ["solve", END])
    return graph.compile()


def structure_of(name: str, app: Any) -> Workflow:
    """The planner's workflow, read from the compiled app as ``optimize`` reads a user's app.

    Every node's calls per run: one question each, except the fan-out's workers (a retry
    loop's later attempts are the loop's own business).
    """
    steps = {node: (float(n), 1.0) for node, n in QUESTIONS_PER_RUN[name].items()}
    if name == "critic_loop":
        steps = {node: (1.0, 1.0) for node in steps}
    return infer_workflow(inspect(app), steps, attempts=ATTEMPTS, quorums=QUORUMS.get(name))


def succeeded(name: str, calls: list[Call]) -> bool:
    ok = {node: [c[2] for c in calls if c[0] == node] for node in {c[0] for c in calls}}
    if name == "chain":
        return all(c[2] for c in calls)
    if name == "map_reduce":
        return ok["planner"][0] and ok["aggregate"][0] and sum(ok["worker"]) >= 4
    return ok["solve"][-1]


def compose_runs(name: str, rows: np.ndarray, clusters: np.ndarray, count: int, rng: np.random.Generator) -> list:
    """Tasks: a cluster per run (by its share of ``rows``), each node's questions from it."""
    labels, sizes = np.unique(clusters[rows], return_counts=True)
    by_label = {label: rows[clusters[rows] == label] for label in labels}
    need = QUESTIONS_PER_RUN[name]
    runs = []
    for _ in range(count):
        pool = by_label[labels[rng.choice(len(labels), p=sizes / sizes.sum())]]
        drawn = rng.choice(pool, sum(need.values()), replace=len(pool) < sum(need.values()))
        task, start = {}, 0
        for node, n in need.items():
            task[node] = [int(q) for q in drawn[start : start + n]]
            start += n
        runs.append(task)
    return runs


def training_runs(name: str, rows: np.ndarray, clusters: np.ndarray, rng: np.random.Generator) -> list[str]:
    """A run id for each of ``rows``: each cluster's rows shuffled and cut into runs of the
    workflow's size (the questions one of its runs draws), so every call is in one run, and a
    run's calls share a kind of task as traced runs' do. Only which calls share a run is read
    from ``clusters``, never the label itself."""
    size = sum(QUESTIONS_PER_RUN[name].values())
    ids = np.empty(len(rows), dtype=object)
    for label in np.unique(clusters[rows]):
        members = rng.permutation(np.flatnonzero(clusters[rows] == label))
        ids[members] = [f"{label}/{i // size}" for i in range(len(members))]
    return [str(run) for run in ids]


Runs = list[tuple[str, list[Call], bool]]
"""A strategy setting's runs as traces record them: (run id, calls, end-to-end success) each."""


def run_strategy(
    app: Any, name: str, router: Any, runs: list, *, keep: bool = False
) -> tuple[tuple[float, float], Runs]:
    """Mean cost and success of the runs under one router, and the runs themselves if ``keep``."""
    costs, wins = [], []
    recorded: Runs = []
    for task in runs:
        run_id = uuid.uuid4().hex
        # One worker thread: the Send copies reach the router in the order the planner sent them,
        # so a run's decisions (and the figures) are the same from one benchmark run to the next.
        config: RunnableConfig = {"configurable": {"router": router}, "max_concurrency": 1}
        out = app.invoke({"run_id": run_id, "task": task, "calls": []}, config)
        cost = sum(c[3] for c in out["calls"])
        if isinstance(router, PlannedRouter):
            router.end_run(run_id, cost)
        costs.append(cost)
        wins.append(succeeded(name, out["calls"]))
        if keep:
            recorded.append((run_id, out["calls"], wins[-1]))
    return (float(np.mean(costs)), float(np.mean(wins))), recorded


def local_tier(models_path: Path, models: list[str]) -> list[str]:
    """Models of at most ``LOCAL_MAX_BILLION`` parameters (the issue's 7–9B "local" tier)."""
    catalogue = json.loads(models_path.read_text(encoding="utf-8"))
    local = []
    for model in models:
        size = str(catalogue.get(model, {}).get("size", "")).upper().rstrip("B")
        try:
            if float(size) <= LOCAL_MAX_BILLION:
                local.append(model)
        except ValueError:
            continue
    return local


class Bench:
    """Everything shared by the seeds: data, embeddings, prices, token counts, graphs."""

    def __init__(
        self,
        outcomes: Path,
        models: Path,
        workflows: list[str],
        *,
        encoder: str = DEFAULT_BENCH_ENCODER,
        estimator: str = DEFAULT_BENCH_ESTIMATOR,
        knn_k: int | None = None,
        fit_to: str = DEFAULT_FIT_TO,
        stack: bool = DEFAULT_STACK,
    ) -> None:
        table = load_llmrouter_json(outcomes, models)
        self.prompts = table.prompts
        self.clusters = np.array(table.clusters or ["all"] * len(table.prompts))
        self.prices = PoolPrices.of(table.prices or {}, local=local_tier(models, table.models))
        self.catalogue = json.loads(models.read_text(encoding="utf-8"))
        self.outcomes = self.prices.align(table.models, table.outcomes)
        # What estimators, carryover and plans learn from: the raw score (partial credit counts
        # fractionally) or success as the runs count it, a full score (unmeasured stays NaN).
        self.fit_to = fit_to
        self.targets = full_success(self.outcomes) if fit_to == "success" else self.outcomes
        if not self.prices.local.any():
            raise SystemExit(f"no model of ≤ {LOCAL_MAX_BILLION:.0f}B in {models}: no all-local baseline")
        counter = TokenCounter()
        self.token_method = counter.name
        self.tokens = counter.many(self.prompts)
        token_of = dict(zip(self.prompts, self.tokens, strict=True))
        self.token_of = lambda text: token_of.get(text) or counter(text)
        started = time.perf_counter()
        # Shape and word-problem features appended as `graphroute train` does; only the base varies.
        encoder_ = training_encoder(base=encoder)
        self.encoder_name = encoder_.name
        self.estimator_kind, self.stack = estimator, stack
        self.unstacked_seeds: list[int] = []  # seeds whose training split was too small to stack
        neighbours = DEFAULT_KNN_K if knn_k is None else knn_k
        self.estimator_params: dict[str, float] = {"k": float(neighbours)} if estimator == "knn" else {}
        self.embeddings = encoder_.encode(self.prompts)
        self.embed_s = time.perf_counter() - started
        self.workflows = workflows
        self.coster = {name: CallCoster(self.prices, OUTPUT_TOKENS[name], tokens=self.token_of) for name in workflows}
        self.harness = {name: Harness(self.prompts, self.outcomes, self.coster[name]) for name in workflows}
        self.apps = {name: build_graph(name, self.harness[name]) for name in workflows}
        self.structures = {name: structure_of(name, self.apps[name]) for name in workflows}

    def estimator(self, *, stack: bool) -> Any:
        """A fresh, unfitted success estimator of the chosen kind (the same for every strategy);
        ``stack``: under the stacked stage (``split`` decides, by the size of its training half)."""
        base = make_estimator(self.estimator_kind, **self.estimator_params)
        return StackedSuccessEstimator.over(base) if stack else base

    def stacks(self, train_rows: int) -> bool:
        """Whether a split with ``train_rows`` training questions gets the stacked stage.

        The smallest fit of a split is a cross-fitting fold's (four fifths of train); below the
        stage's minimum the split gets the plain estimates, so a tiny outcome file still runs.
        """
        smallest = train_rows - math.ceil(train_rows / FOLDS)
        return self.stack and smallest >= self.estimator(stack=True).min_rows

    def describe_estimator(self) -> str:
        params = make_estimator(self.estimator_kind, **self.estimator_params).params()
        shown = {k: v for k, v in params.items() if k in ("k", "l2")}
        stacked = ", stacked" if self.stack else ""
        return f"{self.estimator_kind} {shown}{stacked} on {self.encoder_name}, fitted to {self.fit_to}"

    def split(self, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Train/test rows by question, and estimates for every row from train-only estimators.

        Test rows get the estimator fitted on all of train; train rows get 5-fold cross-fitted
        estimates (what the planner learns its expectations from).
        """
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.prompts))
        cut = round(len(order) * (1 - test_fraction))
        train, test = np.sort(order[:cut]), np.sort(order[cut:])
        # Estimators learn from every measured score; runs need every model's outcome on a question.
        test = test[~np.isnan(self.outcomes[test]).any(axis=1)]
        models = list(self.prices.models)
        stack = self.stacks(len(train))
        if self.stack and not stack and seed not in self.unstacked_seeds:
            self.unstacked_seeds.append(seed)
        estimates = np.zeros_like(self.outcomes)
        fitted = self.estimator(stack=stack).fit(self.embeddings[train], self.targets[train], models)
        estimates[test] = fitted.predict(self.embeddings[test])
        for fold in np.array_split(rng.permutation(train), FOLDS):
            rest = np.setdiff1d(train, fold)
            fold_fit = self.estimator(stack=stack).fit(self.embeddings[rest], self.targets[rest], models)
            estimates[fold] = fold_fit.predict(self.embeddings[fold])
        return train, test, estimates

    def lam_grid(self, points: int) -> np.ndarray:
        """λ from 'best model everywhere' (even for calls worth 1/2000 of a run) to 'cheapest everywhere'."""
        typical = np.median(self.tokens)
        costs = self.prices.cost(typical, 250.0)
        return np.geomspace(1.0 / (2000 * costs.max()), 10.0 / costs.min(), points)


def oracle_lookup(bench: Bench) -> Any:
    """Whether a model gets a call right; a critic call is "right" whenever the answer was."""
    index = {m: j for j, m in enumerate(bench.prices.models)}

    def correct(request: RouteRequest, model: str) -> bool:
        if request.metadata.get("answer_ok", False):
            return True
        return bool(bench.outcomes[request.metadata["qid"], index[model]] == 1)

    return correct


def run_count(args: argparse.Namespace, name: str) -> int:
    """Test runs per strategy setting per seed of one workflow: ``--runs`` if given, else ``RUNS``."""
    return int(args.runs) if args.runs is not None else RUNS[name]


class SeedSetup:
    """One seed: its train/test split, the estimates fitted on train, and every workflow's test runs.

    Every strategy setting of the seed is run on the same tasks (``runs``), so strategies differ
    only in the models they pick.
    """

    def __init__(self, bench: Bench, seed: int, args: argparse.Namespace) -> None:
        self.bench, self.seed = bench, seed
        train, test, estimates = bench.split(seed, args.test_fraction)
        lookup = {bench.prompts[q]: estimates[q] for q in test}
        self.estimate_of = lambda request: lookup.get(request.last_user_text)
        local_cols = np.flatnonzero(bench.prices.local)
        difficulty = 1.0 - estimates[:, local_cols].mean(axis=1)  # the semantic pillar's difficulty
        accuracy = np.nanmean(bench.outcomes[train], axis=0)  # over each model's measured questions
        self.cloud_model = bench.prices.models[int(np.nanargmax(accuracy))]
        self.local_model = bench.prices.models[int(local_cols[0])]  # columns are sorted cheapest first
        # What a run's known results say about its next calls: learned on train, for every workflow.
        self.carry = Carryover.fit(estimates[train], bench.targets[train], bench.clusters[train], seed=seed)
        self.runs, self.demands = {}, {}
        # What the plan knows of each training call's kind of task, per workflow (None: nothing),
        # and the recalibration fitted on it.
        self.latent: dict[str, LatentContexts] = {}
        self.latent_purity: dict[str, float] = {}
        self.recalibration: dict[str, ContextCalibration | None] = {}
        for name in bench.workflows:
            count = run_count(args, name)
            self.runs[name] = compose_runs(name, test, bench.clusters, count, np.random.default_rng(10_000 + seed))
            contexts: np.ndarray | None = None
            if args.task_labels:
                contexts = bench.clusters[train]
            elif getattr(args, "latent_contexts", DEFAULT_LATENT_CONTEXTS):
                run_ids = training_runs(name, train, bench.clusters, np.random.default_rng(20_000 + seed))
                self.latent[name] = LatentContexts.fit(bench.targets[train], run_ids, seed=seed)
                contexts = self.latent[name].label_calls(bench.targets[train], run_ids)
                self.latent_purity[name] = purity(contexts, bench.clusters[train])
            self.recalibration[name] = None
            if args.recalibrate and contexts is not None and len(np.unique(contexts)) > 1:
                self.recalibration[name] = ContextCalibration.fit(estimates[train], bench.targets[train], contexts)
            self.demands[name] = {
                node: NodeDemand(
                    node,
                    estimates[train],
                    bench.tokens[train],
                    tokens,
                    outcomes=bench.targets[train],
                    difficulty=difficulty[train],
                    contexts=contexts,
                )
                for node, tokens in OUTPUT_TOKENS[name].items()
            }

    def router(self, name: str, strategy: str, setting: float) -> Any:
        """The router of one strategy setting: λ for the swept ones and llmselector, the cloud
        share for random, nothing for the fixed points."""
        bench = self.bench
        if strategy == "holistic":
            plan = solve(
                bench.structures[name],
                self.demands[name],
                bench.prices,
                lam=setting,
                carryover=self.carry,
                recalibration=self.recalibration[name],
            )
            return PlannedRouter(plan, estimates=self.estimate_of, tokens=bench.token_of)
        if strategy == "per_call":
            return PerCallRouter(bench.coster[name], self.estimate_of, lam=setting)
        if strategy == "llmselector":
            assignment = llmselector(bench.structures[name], self.demands[name], bench.prices, lam=setting)
            return assignment_router(assignment, self.local_model)
        if strategy == "random":
            return RandomRouter(self.local_model, self.cloud_model, share=setting, seed=self.seed)
        if strategy == "oracle":
            return OracleRouter(bench.coster[name], oracle_lookup(bench))
        return StaticRouter(self.cloud_model if strategy == "all_cloud" else self.local_model)


Task = tuple[int, str, str, float, str]
"""One strategy setting on one seed: (seed's index, workflow, strategy, setting, trace label)."""

# The seeds' setups, built before worker processes are forked, so that every worker has them.
_SETUPS: list[SeedSetup] = []


def run_task(task: Task, keep: bool = False) -> tuple[tuple[float, float], Runs]:
    """A task's (cost, success), and its runs if ``keep`` (for ``--traces``)."""
    index, name, strategy, setting, _ = task
    setup = _SETUPS[index]
    router = setup.router(name, strategy, setting)
    return run_strategy(setup.bench.apps[name], name, router, setup.runs[name], keep=keep)


class Tasks:
    """Runs tasks here (``jobs`` = 1) or on forked worker processes; results in task order.

    Every task's result depends only on its seed and setting (its router is built afresh and
    its runs are fixed by the seed), so the figures are the same for any number of jobs.
    """

    def __init__(self, jobs: int, traces: TraceWriter | None) -> None:
        self.traces = traces
        self.pool: ProcessPoolExecutor | None = None
        if jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
            self.pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))

    def run(self, tasks: list[Task]) -> list[tuple[float, float]]:
        keeps = [self.traces is not None and task[0] == 0 for task in tasks]  # seed 0's runs are traced
        if self.pool is None:
            results = [run_task(task, keep) for task, keep in zip(tasks, keeps, strict=True)]
        else:
            results = list(self.pool.map(run_task, tasks, keeps))
        for task, (_, recorded), keep in zip(tasks, results, keeps, strict=True):
            if keep and self.traces is not None:
                name = task[1]
                self.traces.add(f"{name}/{task[4]}", recorded, OUTPUT_TOKENS[name])
        return [point for point, _ in results]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def refinements(lams: Sequence[float], points: Sequence[Sequence[float]], *, gap: float = REFINE_GAP) -> list[float]:
    """λ settings to add to a swept curve: the geometric midpoint of every two neighbouring
    settings (by λ) whose costs differ by more than ``gap`` times.

    A geometric λ grid wide enough for any pool leaves some stretches of a curve with no point;
    there, the convex hull is a straight chord, and whichever strategy lacks a point in the
    stretch looks worse than it is. Filling cost gaps, by the same rule for every swept
    strategy, compares the strategies rather than where the grid happened to fall.
    """
    order = sorted(range(len(lams)), key=lambda i: lams[i])
    added = []
    for a, b in itertools.pairwise(order):
        low, high = sorted((points[a][0], points[b][0]))
        if high > gap * max(low, 1e-300):
            added.append(float(np.sqrt(lams[a] * lams[b])))
    return added


FIXED_POINTS = ("all_cloud", "all_local", "oracle")
RANDOM_SHARES = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def run_sweeps(
    bench: Bench, setups: list[SeedSetup], args: argparse.Namespace, tasks: Tasks
) -> list[dict[str, dict[str, Any]]]:
    """Every strategy on every seed; the λ-swept ones on one λ list per workflow and strategy,
    shared by the seeds (curves are averaged over seeds setting by setting) and refined where
    the seed-averaged curve has a cost gap (``--refine`` rounds)."""
    grid = [float(lam) for lam in bench.lam_grid(args.points)]
    seeds = range(len(setups))
    out: list[dict[str, dict[str, Any]]] = [{} for _ in setups]
    for name in bench.workflows:
        started = time.perf_counter()
        settings = [
            ("llmselector", lam, f"llmselector@{i:02d}") for i, lam in enumerate(grid[:: max(1, len(grid) // 8)])
        ]
        settings += [("random", share, f"random@{share:.2f}") for share in RANDOM_SHARES]
        settings += [(point, 0.0, point) for point in FIXED_POINTS]
        batch = [(seed, name, strategy, setting, label) for strategy, setting, label in settings for seed in seeds]
        for seed_out, setup in zip(out, setups, strict=True):
            seed_out[name] = {
                "curves": {"holistic": [], "per_call": [], "llmselector": [], "random": []},
                "points": {},
                "cloud_model": setup.cloud_model,
                "local_model": setup.local_model,
            }
        lams: dict[str, list[float]] = {strategy: [] for strategy in SWEPT}
        todo = {strategy: grid for strategy in SWEPT}
        for round_ in range(args.refine + 1):
            for strategy, new in todo.items():
                for lam in new:
                    label = f"{strategy}@{len(lams[strategy]):02d}"
                    batch += [(seed, name, strategy, lam, label) for seed in seeds]
                    lams[strategy].append(lam)
            for (seed, _, strategy, _, _), point in zip(batch, tasks.run(batch), strict=True):
                if strategy in FIXED_POINTS:
                    out[seed][name]["points"][strategy] = point
                else:
                    out[seed][name]["curves"][strategy].append(point)
            batch = []
            if round_ == args.refine:
                break
            todo = {
                strategy: refinements(lams[strategy], mean_curve([s[name]["curves"][strategy] for s in out]))
                for strategy in SWEPT
            }
        for seed_out in out:
            seed_out[name]["lambdas"] = lams
        print(
            f"  {name}: {time.perf_counter() - started:.0f}s, λ settings "
            + ", ".join(f"{strategy} {len(lams[strategy])}" for strategy in SWEPT),
            flush=True,
        )
    return out


def replan_problem(bench: Bench) -> tuple[Workflow, dict[str, NodeDemand], float]:
    """A 50-node workflow (47 steps, a 6-wide quorum, a 3-attempt retry loop) with 100 sample
    calls per node from the seed-0 training split, and a per-run budget to plan for."""
    train, _, estimates = bench.split(0, 0.5)
    rng = np.random.default_rng(0)
    parts: list[Any] = [Step(f"step{i}", criticality=float(rng.uniform(0.2, 1.0))) for i in range(47)]
    parts += [Quorum("workers", 6, 4), Retry("solve", "critic", 3)]
    workflow = Workflow(tuple(parts))
    demands = {}
    for node in workflow.nodes():
        rows = rng.choice(train, 100, replace=len(train) < 100)  # a small outcome file: repeat questions
        demands[node] = NodeDemand(
            node,
            estimates[rows],
            bench.tokens[rows],
            250.0,
            outcomes=bench.targets[rows],
            contexts=bench.clusters[rows],
        )
    budget = 0.3 * 60 * float(bench.prices.cost(np.median(bench.tokens), 250.0).max())
    return workflow, demands, budget


def solver_timing(bench: Bench, repeats: int = 9, solver: Any = solve) -> dict[str, float]:
    """Re-planning speed: ``replan_problem`` solved for its budget (the search for λ included)."""
    workflow, demands, budget = replan_problem(bench)
    times, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        plan = solver(workflow, demands, bench.prices, budget_usd=budget)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return {
        "nodes": len(workflow.nodes()),
        "slots": len(workflow.slots()),
        "median_ms": float(np.median(times)),
        "min_ms": float(np.min(times)),
        "median_cpu_ms": float(np.median(cpu)),
        "expected_cost_usd": plan.expected_cost,
        "budget_usd": budget,
    }


def mean_curve(per_seed: Sequence[Sequence[tuple[float, float]]]) -> list[list[float]]:
    """Seeds' curves of one strategy averaged setting by setting: [[cost, success], ...]."""
    return [
        [float(np.mean([curve[i][0] for curve in per_seed])), float(np.mean([curve[i][1] for curve in per_seed]))]
        for i in range(len(per_seed[0]))
    ]


def summarise(per_seed: list[dict[str, dict[str, Any]]], name: str) -> dict[str, Any]:
    """Curves and points averaged over seeds (same settings per seed), and the comparison figures."""
    first = per_seed[0][name]
    curve_set = {k: mean_curve([s[name]["curves"][k] for s in per_seed]) for k in first["curves"]}
    point_set = {k: mean_curve([[s[name]["points"][k]] for s in per_seed])[0] for k in first["points"]}
    floor = point_set["all_local"][1]
    holistic = [(c, s) for c, s in curve_set["holistic"]]
    comparison = curves.compare(holistic, [(c, s) for c, s in curve_set["per_call"]], floor=floor)
    return {
        "curves": curve_set,
        "points": point_set,
        "saving_vs_per_call": comparison["saving"],
        "worst_ratio": comparison["worst"],
        "cost_to_match_all_cloud": curves.match_ratio(holistic, (point_set["all_cloud"][0], point_set["all_cloud"][1])),
        "_comparison": comparison,
    }


def purity(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of items in the majority true class of their found class (1: no found class mixes)."""
    total = 0
    for label in np.unique(found):
        _, counts = np.unique(truth[found == label], return_counts=True)
        total += int(counts.max())
    return total / len(found)


def latent_summary(setup: SeedSetup, name: str) -> dict[str, Any]:
    """How many run contexts a seed's training runs gave, and how cleanly they split the clusters."""
    latent = setup.latent[name]
    return {"contexts": len(latent), "purity": round(setup.latent_purity[name], 4), "bic": round(latent.bic, 1)}


def seed_figures(per_seed: list[dict[str, dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    figures = []
    for seed_out in per_seed:
        one = summarise([seed_out], name)
        figures.append({k: one[k] for k in ("saving_vs_per_call", "worst_ratio", "cost_to_match_all_cloud")})
    return figures


def print_table(results: dict[str, Any], meta: dict[str, Any]) -> None:
    print(
        f"\nWorkflow benchmark — {meta['outcomes']} ({meta['seeds']} seeds; test runs per point: "
        f"{', '.join(f'{k} {v}' for k, v in meta['runs'].items())}; "
        f"tokens: {meta['tokens']})"
    )
    header = f"{'workflow':<12} {'saving vs per-call':>19} {'worst ratio':>12} {'cost to match cloud':>20}"
    print(header + "   (goals: ≥0.30/0.10/0.05, ≤1.02, ≤0.25)")
    for name, r in results.items():
        match = r["cost_to_match_all_cloud"]
        print(
            f"{name:<12} {r['saving_vs_per_call']:>19.3f} {r['worst_ratio']:>12.3f} "
            f"{'unreachable' if match is None else f'{match:.3f}':>20}"
        )
    for name, r in results.items():
        print(f"\n{name}: cost per run (USD ×1e6) and end-to-end success")
        for label, point in r["points"].items():
            print(f"  {label:<12} {point[0] * 1e6:>9.1f}  {point[1]:.3f}")
        comparison = r["_comparison"]
        for s, ratio in list(zip(comparison["levels"], comparison["ratios"], strict=True))[::4]:
            print(f"  success {s:.3f}: holistic/per-call cost ratio {ratio:.3f}")
        for label, curve in r["curves"].items():
            hull = curves.frontier([tuple(p) for p in curve])
            print(f"  {label:<12} frontier: " + ", ".join(f"({c * 1e6:.0f}, {s:.3f})" for c, s in hull))


def plot(results: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install 'graphroute[plot]'", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.5), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items(), strict=True):
        for label, curve in r["curves"].items():
            hull = curves.frontier([tuple(p) for p in curve])
            ax.plot([c * 1e6 for c, _ in hull], [s for _, s in hull], marker=".", label=label)
        for label, (cost, success) in r["points"].items():
            ax.scatter([cost * 1e6], [success], marker="*", s=120, label=label, zorder=5)
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("cost per run (µUSD)")
        ax.set_ylabel("end-to-end success")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--outcomes", type=Path, required=True, help="LLMRouter train.json-format file")
    parser.add_argument("--models", type=Path, required=True, help="LLMRouter models.json-format file")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    parser.add_argument("--plot", type=Path, help="PNG of the cost–success curves (needs matplotlib)")
    parser.add_argument(
        "--runs",
        type=int,
        help="test runs per strategy setting per seed, for every workflow (fewer: faster, noisier figures; "
        f"default per workflow: {', '.join(f'{k} {v}' for k, v in RUNS.items())})",
    )
    parser.add_argument("--points", type=int, default=14, help="λ settings per swept strategy before refining")
    parser.add_argument(
        "--refine",
        type=int,
        default=REFINE_ROUNDS,
        help=f"rounds adding a λ setting wherever a swept curve's cost jumps more than {REFINE_GAP}× (0: none)",
    )
    parser.add_argument("--test-fraction", type=float, default=0.5)
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(os.cpu_count() or 1, MAX_JOBS),
        help="worker processes for the strategy settings (forked; 1: run here); the figures do not depend on it",
    )
    parser.add_argument("--workflows", default="chain,map_reduce,critic_loop")
    parser.add_argument(
        "--traces",
        type=Path,
        help="write the first seed's runs here for `graphroute replay` "
        "(traces.sqlite, outcomes.jsonl, pool.toml, figures.json)",
    )
    parser.add_argument(
        "--encoder",
        choices=sorted(ENCODER_ALIASES),
        default=DEFAULT_BENCH_ENCODER,
        help="sentence encoder under the success estimator (shape and word-problem features appended)",
    )
    parser.add_argument(
        "--estimator", choices=sorted(BASE_KINDS), default=DEFAULT_BENCH_ESTIMATOR, help="success estimator kind"
    )
    parser.add_argument(
        "--stack",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_STACK,
        help="a second stage over the estimator: each model's success re-read from every model's estimate "
        "(--no-stack: the estimator alone)",
    )
    parser.add_argument(
        "--recalibrate",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_RECALIBRATE,
        help="the plan reads each call's estimates by the run's likely task cluster (Platt per cluster and "
        "model, mixed by the run's context posterior) where its choice is a matter of price",
    )
    parser.add_argument(
        "--task-labels",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_TASK_LABELS,
        help="the plan learns run contexts (and --recalibrate's maps) from the data's cluster_id; "
        "--no-task-labels: one context, no recalibration, as optimize() plans from traces",
    )
    parser.add_argument(
        "--latent-contexts",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_LATENT_CONTEXTS,
        help="with --no-task-labels: run contexts (and --recalibrate's maps) learnt from the training "
        "split's runs' outcomes by a latent-class model, not from any label",
    )
    parser.add_argument("--knn-k", type=int, help=f"neighbours for --estimator knn (default {DEFAULT_KNN_K})")
    parser.add_argument(
        "--fit-to",
        choices=FIT_TARGETS,
        default=DEFAULT_FIT_TO,
        help="what estimators and plans learn from: the raw score, or success as runs count it (a full score)",
    )
    args = parser.parse_args(argv)
    if args.knn_k is not None and args.estimator != "knn":
        parser.error(f"--knn-k {args.knn_k} needs --estimator knn (got --estimator {args.estimator})")
    if args.latent_contexts and args.task_labels:
        parser.error("--latent-contexts stands in for the task labels: use it with --no-task-labels")
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: use 1 (run here) or more worker processes")
    if args.knn_k is not None and args.knn_k < 1:
        parser.error(f"--knn-k {args.knn_k}: use a positive number of neighbours")
    workflows = [w.strip() for w in args.workflows.split(",") if w.strip()]
    unknown = [w for w in workflows if w not in WORKFLOWS]
    if unknown:
        parser.error(f"unknown workflow(s) {unknown}; choose from {list(WORKFLOWS)}")
    started = time.perf_counter()
    bench = Bench(
        args.outcomes,
        args.models,
        workflows,
        encoder=args.encoder,
        estimator=args.estimator,
        knn_k=args.knn_k,
        fit_to=args.fit_to,
        stack=args.stack,
    )
    print(
        f"{len(bench.prompts)} questions, {len(bench.prices)} models ({int(bench.prices.local.sum())} local); "
        f"embeddings {bench.embed_s:.0f}s; tokens: {bench.token_method}; estimator: {bench.describe_estimator()}",
        flush=True,
    )
    timing = solver_timing(bench)
    print(
        f"solver: {timing['nodes']}-node workflow planned for a budget in {timing['median_ms']:.0f} ms wall, "
        f"{timing['median_cpu_ms']:.0f} ms CPU (median of 9; min {timing['min_ms']:.0f} ms wall)",
        flush=True,
    )
    traces = (
        TraceWriter(args.traces, bench.prompts, bench.tokens, bench.prices, bench.catalogue) if args.traces else None
    )
    setups = [SeedSetup(bench, seed, args) for seed in range(args.seeds)]
    if args.latent_contexts:
        for name in workflows:
            found = [latent_summary(setup, name) for setup in setups]
            print(
                f"{name}: latent run contexts per seed {[f['contexts'] for f in found]}, "
                f"cluster purity {[f['purity'] for f in found]}",
                flush=True,
            )
    if bench.unstacked_seeds:
        print(
            f"note: seed(s) {', '.join(map(str, bench.unstacked_seeds))}: a training split this small cannot be "
            "stacked; those seeds use the plain estimates",
            flush=True,
        )
    _SETUPS[:] = setups  # before the workers fork
    tasks = Tasks(args.jobs, traces)
    try:
        per_seed = run_sweeps(bench, setups, args, tasks)
    finally:
        tasks.close()
        _SETUPS.clear()
    if traces is not None:
        first = setups[0]
        traces.close(bench.outcomes, cloud_model=first.cloud_model, local_model=first.local_model, seed=first.seed)
        print(
            f"traces of seed 0 written to {args.traces} (graphroute replay {args.traces / 'traces.sqlite'} "
            f"--pool {args.traces / 'pool.toml'} --outcomes {args.traces / 'outcomes.jsonl'} ...)",
            flush=True,
        )
    results = {name: summarise(per_seed, name) for name in workflows}
    meta = {
        "outcomes": str(args.outcomes),
        "models": str(args.models),
        "seeds": args.seeds,
        "runs": {name: run_count(args, name) for name in workflows},
        "points": args.points,
        "refine": args.refine,
        "jobs": args.jobs,
        "lambdas": {name: per_seed[0][name]["lambdas"] for name in workflows},
        "test_fraction": args.test_fraction,
        "tokens": bench.token_method,
        "output_tokens": OUTPUT_TOKENS,
        "estimator": bench.describe_estimator(),
        "unstacked_seeds": bench.unstacked_seeds,
        "recalibrate": args.recalibrate and (args.task_labels or args.latent_contexts),
        "task_labels": args.task_labels,
        "latent_contexts": {name: [latent_summary(setup, name) for setup in setups] for name in workflows}
        if args.latent_contexts
        else None,
        "per_seed": {name: seed_figures(per_seed, name) for name in workflows},
        "models_used": {
            name: {"all_cloud": per_seed[0][name]["cloud_model"], "all_local": per_seed[0][name]["local_model"]}
            for name in workflows
        },
        "solver_timing": timing,
        "seconds": time.perf_counter() - started,
    }
    print_table(results, meta)
    document = {
        "workflows": {name: {k: v for k, v in r.items() if not k.startswith("_")} for name, r in results.items()},
        "meta": meta,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults written to {args.json} ({meta['seconds']:.0f}s)")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
