"""Preference pairs from traces: the data flywheel.

Whenever two models answered the same request (exploration, shadow calls, a replayed request)
and their answers have known scores (feedback, outcomes, automatic failures), the better answer
is *chosen* and the worse *rejected*. The pairs feed preference tuning (DPO and the like) or a
router's training set. One JSON object per line, in the conversational form such trainers
read::

    {"prompt": [{"role": "user", "content": "..."}],
     "chosen": [{"role": "assistant", "content": "..."}],
     "rejected": [{"role": "assistant", "content": "..."}],
     "meta": {"chosen_model": "cloud", "rejected_model": "local", "chosen_score": 1.0, ...}}

``text`` format writes ``prompt``/``chosen``/``rejected`` as plain strings instead.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from graphroute.traces.outcomes import OutcomeIndex
from graphroute.traces.records import CallRecord, FeedbackRecord
from graphroute.traces.store import TraceStore

PairFormat = Literal["chat", "text"]


@dataclass(frozen=True)
class PreferencePair:
    """Two scored answers to one request, better one first."""

    prompt: list[dict[str, str]]
    chosen: CallRecord
    rejected: CallRecord
    chosen_score: float
    rejected_score: float

    def as_json(self, fmt: PairFormat = "chat") -> dict[str, Any]:
        meta = {
            "request_hash": self.chosen.request_hash,
            "node": self.chosen.node,
            "chosen_model": self.chosen.model,
            "rejected_model": self.rejected.model,
            "chosen_score": self.chosen_score,
            "rejected_score": self.rejected_score,
            "chosen_call_id": self.chosen.call_id,
            "rejected_call_id": self.rejected.call_id,
        }
        if fmt == "text":
            prompt = "\n\n".join(f"{m['role']}: {m['content']}" for m in self.prompt)
            return {"prompt": prompt, "chosen": self.chosen.output, "rejected": self.rejected.output, "meta": meta}
        return {
            "prompt": self.prompt,
            "chosen": [{"role": "assistant", "content": self.chosen.output}],
            "rejected": [{"role": "assistant", "content": self.rejected.output}],
            "meta": meta,
        }


def preference_pairs(calls: Sequence[CallRecord], index: OutcomeIndex, *, margin: float = 0.0) -> list[PreferencePair]:
    """Every pair of differently scored answers (by more than ``margin``) to the same request.

    Only calls that kept their texts take part. One answer per (model, text): a request
    answered identically many times counts once, with the mean of its scores.
    """
    by_request: dict[str, dict[tuple[str, str], list[tuple[CallRecord, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for call in calls:
        if not (call.request_hash and call.prompt and call.output is not None) or call.error:
            continue
        score = index.own_score(call)
        if score is not None:
            by_request[call.request_hash][call.model, call.output].append((call, score))
    pairs = []
    for answers in by_request.values():
        scored = [(items[0][0], sum(s for _, s in items) / len(items)) for items in answers.values()]
        for (a, score_a), (b, score_b) in itertools.combinations(scored, 2):
            if a.output == b.output or abs(score_a - score_b) <= margin:
                continue
            (best, best_score), (worst, worst_score) = sorted([(a, score_a), (b, score_b)], key=lambda x: -x[1])
            pairs.append(PreferencePair(json.loads(best.prompt or "[]"), best, worst, best_score, worst_score))
    return pairs


def export_preferences(
    store: TraceStore,
    out: Path | str,
    *,
    outcomes: Iterable[FeedbackRecord] = (),
    margin: float = 0.0,
    fmt: PairFormat = "chat",
) -> int:
    """Write the store's preference pairs to ``out`` (JSON lines); returns how many."""
    calls = store.calls()
    index = OutcomeIndex.build(calls, store.feedback(), store.runs(), extra=outcomes)
    pairs = preference_pairs(calls, index, margin=margin)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair.as_json(fmt), ensure_ascii=False) + "\n")
    return len(pairs)
