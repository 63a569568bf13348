"""What ``benchmarks/workflows.py --traces DIR`` leaves for ``graphroute replay``: one seed's runs.

The benchmark's runs are simulated (every model call is an outcome-table lookup), so they are
written as the trace store would have recorded them, plus the known outcomes that make replay's
quality exact:

- ``traces.sqlite`` — a ``TraceStore`` with one run per simulated run, graph identity
  ``"<workflow>/<strategy>"`` (``"chain/per_call@03"``: the 4th λ of the sweep), each call with
  its node, model, tokens, cost and request fingerprint; the run's end-to-end success is in the
  run's metadata (``{"success": true}``), since replay scores calls, not runs;
- ``outcomes.jsonl`` — every question the runs asked × every model the outcome table knows, as
  ``{"request_hash", "model", "score"}`` lines (``graphroute replay --outcomes``); the score is
  1 for a full score and 0 otherwise, as the benchmark counts a call right;
- ``pool.toml`` — the models with their prices, the ≤ 20B tier marked local; the benchmark's
  all-local model is listed first and its all-cloud model first among the cloud models, so
  replay's ``all-local`` (cheapest local) and ``all-cloud`` (priciest cloud, first on ties) are
  the benchmark's own when prices allow (``figures.json`` names both);
- ``figures.json`` — per graph identity: runs, calls, total cost, cost per run, end-to-end
  success and mean per-call success (what replay reports as quality).

Check it::

    graphroute replay DIR/traces.sqlite --pool DIR/pool.toml --outcomes DIR/outcomes.jsonl \\
        --graph chain/all_cloud --strategy all-cloud --strategy all-local
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.messages import HumanMessage

from graphroute.planning.pricing import PoolPrices
from graphroute.traces.quality import request_fingerprint
from graphroute.traces.records import CallRecord, RunRecord
from graphroute.traces.store import TraceStore

Call = tuple[str, str, bool, float, int]
"""(node, model, right, cost in USD, question row) — one simulated model call."""


class TraceWriter:
    """Collects one seed's simulated runs per strategy and writes the replay files."""

    def __init__(
        self,
        directory: Path,
        prompts: Sequence[str],
        tokens: np.ndarray,
        prices: PoolPrices,
        catalogue: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / "traces.sqlite"
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
        self.store = TraceStore(path)
        self.prompts, self.tokens, self.prices, self.catalogue = prompts, tokens, prices, catalogue
        self._hashes: dict[int, str] = {}
        self.questions: set[int] = set()
        self.figures: dict[str, dict[str, float | int]] = {}
        self._clock = time.time()

    def request_hash(self, qid: int) -> str:
        """The fingerprint the trace store gives a one-message request with this question."""
        if qid not in self._hashes:
            self._hashes[qid] = request_fingerprint([HumanMessage(self.prompts[qid])])
        return self._hashes[qid]

    def add(self, graph: str, runs: Sequence[tuple[str, list[Call], bool]], output_tokens: Mapping[str, float]) -> None:
        """The runs of one strategy setting: ``(run_id, calls, end-to-end success)`` each."""
        records: list[RunRecord | CallRecord] = []
        calls_made = right = 0
        cost = 0.0
        for run_id, calls, success in runs:
            start = self._clock
            for i, (node, model, ok, call_cost, qid) in enumerate(calls):
                self.questions.add(qid)
                records.append(
                    CallRecord(
                        run_id=run_id,
                        node=node,
                        requested_model=None,
                        model=model,
                        reason=graph.partition("/")[2],
                        input_tokens=int(self.tokens[qid]),
                        output_tokens=int(output_tokens[node]),
                        cost_usd=call_cost,
                        started_at=start + i * 1e-3,  # one after the other, as the graph ran them
                        request_hash=self.request_hash(qid),
                    )
                )
                calls_made, right, cost = calls_made + 1, right + int(ok), cost + call_cost
            self._clock += 1.0
            records.append(
                RunRecord(
                    run_id,
                    graph,
                    start,
                    start + len(calls) * 1e-3,
                    "ok",
                    None,
                    {"success": success},
                    plan=graph.partition("/")[2],
                )
            )
        self.store.merge(records)
        self.figures[graph] = {
            "runs": len(runs),
            "calls": calls_made,
            "cost_usd": cost,
            "cost_per_run": cost / len(runs) if runs else 0.0,
            "success": float(np.mean([success for _, _, success in runs])) if runs else 0.0,
            "call_success": right / calls_made if calls_made else 0.0,
        }

    def close(self, outcomes: np.ndarray, *, cloud_model: str, local_model: str, seed: int) -> None:
        """Write the outcome file, the pool and the figures; close the store."""
        self.store.close()
        with (self.directory / "outcomes.jsonl").open("w", encoding="utf-8") as out:
            for qid in sorted(self.questions):
                for j, model in enumerate(self.prices.models):
                    if not np.isnan(outcomes[qid, j]):
                        score = float(outcomes[qid, j] == 1)  # what the benchmark counts: a full score only
                        line = {"request_hash": self.request_hash(qid), "model": model, "score": score}
                        out.write(json.dumps(line) + "\n")
        (self.directory / "pool.toml").write_text(self._pool_toml(cloud_model, local_model), encoding="utf-8")
        document = {
            "seed": seed,
            "all_cloud_model": cloud_model,
            "all_local_model": local_model,
            "graphs": self.figures,
        }
        (self.directory / "figures.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    def _pool_toml(self, cloud_model: str, local_model: str) -> str:
        order = [local_model, cloud_model, *(m for m in self.prices.models if m not in (local_model, cloud_model))]
        lines = ["# Models of the workflow benchmark with their prices (USD per 1M tokens); ≤ 20B marked local.", ""]
        for model in order:
            j = self.prices.index(model)
            entry = self.catalogue.get(model, {})
            lines += [
                f'[models."{model}"]',
                'provider = "openai-compatible"',
                f"model = {json.dumps(str(entry.get('model', model)))}",
                'base_url = "https://integrate.api.nvidia.com/v1"',
                'api_key_env = "NVIDIA_API_KEY"',
                f"input_price = {float(self.prices.input_price[j])!r}",
                f"output_price = {float(self.prices.output_price[j])!r}",
                f'locality = "{"local" if self.prices.local[j] else "cloud"}"',
                "",
            ]
        return "\n".join(lines)
