"""Per-question outcome data in the two public formats, read into one ``OutcomeTable``.

- RouteLLM (two models): CSV files with a ``prompt`` column and one boolean column per model
  (plus optional ``<model>_response`` text columns, ignored). A ``contaminated_prompts.jsonl``
  next to the CSVs lists prompts overlapping RouteLLM's training data; like RouteLLM's own
  evaluation we drop rows whose prompt equals one of its ``eval_prompt`` values.
- LLMRouter (N models with prices): ``train.json`` (a list of ``question``, ``cluster_id``,
  ``scores``: model → 0/1) and ``models.json`` (model → ``input_price``/``output_price`` in USD
  per 1M tokens, ...).

Both become a table of prompts × models with 0/1 outcomes and ``nan`` where a model was not
measured, so tables from both sources can be stacked and trained on together.

Usage::

    table = load_outcomes(["../shared/data"])        # every file found, both formats
    table.models, table.outcomes.shape
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphroute.errors import ConfigError

CONTAMINATION_FILE = "contaminated_prompts.jsonl"
_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no"}


FIT_TARGETS = ("score", "success")
"""What an estimator can learn from: the raw score, or ``full_success`` of it."""


def full_success(outcomes: np.ndarray) -> np.ndarray:
    """1 where a score is full, 0 where it is partial or wrong, nan where it was not measured.

    Some outcome files give partial credit (LLMRouter: 2.6 % of its scores lie strictly between 0
    and 1). A workflow's step either worked or did not, and a plan weighs P(full score): an
    estimator fitted to partial credit learns a fraction of a success that no run counts.
    """
    outcomes = np.asarray(outcomes, dtype=np.float64)
    return np.where(np.isnan(outcomes), np.nan, (outcomes == 1.0).astype(np.float64))


@dataclass
class OutcomeTable:
    """Prompts × models outcome matrix (1 = correct, 0 = wrong, nan = not measured)."""

    prompts: list[str]
    models: list[str]
    outcomes: np.ndarray
    clusters: list[str] | None = None
    prices: dict[str, tuple[float, float]] | None = None
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.outcomes = np.asarray(self.outcomes, dtype=np.float64)
        if self.outcomes.shape != (len(self.prompts), len(self.models)):
            raise ValueError(f"outcomes shape {self.outcomes.shape} != ({len(self.prompts)}, {len(self.models)})")

    def __len__(self) -> int:
        return len(self.prompts)

    def column(self, model: str) -> np.ndarray:
        """One model's outcomes."""
        return self.outcomes[:, self.models.index(model)]

    def subset(self, rows: Sequence[int] | np.ndarray) -> OutcomeTable:
        """The given rows, same models."""
        rows = np.asarray(rows, dtype=int)
        return OutcomeTable(
            prompts=[self.prompts[i] for i in rows],
            models=list(self.models),
            outcomes=self.outcomes[rows],
            clusters=[self.clusters[i] for i in rows] if self.clusters is not None else None,
            prices=self.prices,
            sources=list(self.sources),
        )

    def successes(self) -> OutcomeTable:
        """The same table with every score below full counted as a failure (``full_success``)."""
        return dataclasses.replace(self, outcomes=full_success(self.outcomes))

    def accuracy(self) -> dict[str, float]:
        """Mean success per model over the rows where it was measured."""
        known = ~np.isnan(self.outcomes)
        totals = np.where(known, self.outcomes, 0.0).sum(axis=0)
        counts = known.sum(axis=0)
        return {m: float(totals[j] / counts[j]) if counts[j] else float("nan") for j, m in enumerate(self.models)}


def merge(tables: Iterable[OutcomeTable]) -> OutcomeTable:
    """Stack tables over the union of their models; unmeasured cells become nan."""
    tables = list(tables)
    if not tables:
        raise ConfigError("no outcome data to merge")
    models: list[str] = []
    for table in tables:
        models.extend(m for m in table.models if m not in models)
    outcomes = np.full((sum(len(t) for t in tables), len(models)), np.nan)
    prompts: list[str] = []
    clusters: list[str] = []
    prices: dict[str, tuple[float, float]] = {}
    row = 0
    for table in tables:
        for j, model in enumerate(table.models):
            outcomes[row : row + len(table), models.index(model)] = table.outcomes[:, j]
        prompts.extend(table.prompts)
        clusters.extend(table.clusters or ["" for _ in table.prompts])
        prices.update(table.prices or {})
        row += len(table)
    return OutcomeTable(
        prompts=prompts,
        models=models,
        outcomes=outcomes,
        clusters=clusters,
        prices=prices or None,
        sources=[s for t in tables for s in t.sources],
    )


def _flag(value: str, path: Path, line: int) -> float:
    text = value.strip().lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    if text in ("", "nan", "none"):
        return float("nan")
    raise ConfigError(f"row {line}: expected True/False, got {value[:40]!r}", path=path)


def _contaminated(directory: Path) -> set[str]:
    path = directory / CONTAMINATION_FILE
    if not path.exists():
        return set()
    with path.open(encoding="utf-8") as lines:
        return {json.loads(line)["eval_prompt"] for line in lines if line.strip()}


def _csv_files(paths: Sequence[Path | str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(path.rglob("*.csv")))
        elif path.exists():
            files.append(path)
        else:
            raise ConfigError("file not found; pass RouteLLM CSV files or directories holding them", path=path)
    if not files:
        raise ConfigError(f"no CSV files under {', '.join(map(str, paths))}")
    return files


def load_routellm_csv(paths: Sequence[Path | str] | Path | str, *, decontaminate: bool = True) -> OutcomeTable:
    """RouteLLM-format CSVs (files or directories); cluster = file stem (``mmlu_anatomy``)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    csv.field_size_limit(sys.maxsize)
    tables: list[OutcomeTable] = []
    for path in _csv_files(paths):
        drop = _contaminated(path.parent) if decontaminate else set()
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            if "prompt" not in columns:
                raise ConfigError(
                    "no 'prompt' column; expected RouteLLM's format (prompt, <weak>, <strong>)", path=path
                )
            models = [c for c in columns if c != "prompt" and not c.endswith("_response") and c]
            prompts: list[str] = []
            rows: list[list[float]] = []
            for line, record in enumerate(reader, start=2):
                if record["prompt"] in drop:
                    continue
                prompts.append(record["prompt"])
                rows.append([_flag(record[m] or "", path, line) for m in models])
        table = OutcomeTable(
            prompts=prompts,
            models=models,
            outcomes=np.array(rows, dtype=np.float64).reshape(len(prompts), len(models)),
            clusters=[path.stem] * len(prompts),
            sources=[str(path)],
        )
        tables.append(table)
    return merge(tables)


def load_llmrouter_json(train_path: Path | str, models_path: Path | str) -> OutcomeTable:
    """LLMRouter's ``train.json`` + ``models.json``; model order and prices from models.json."""
    train_path, models_path = Path(train_path), Path(models_path)
    for path in (train_path, models_path):
        if not path.exists():
            raise ConfigError("file not found; LLMRouter data needs train.json and models.json", path=path)
    catalogue = json.loads(models_path.read_text(encoding="utf-8"))
    if not isinstance(catalogue, dict) or not catalogue:
        raise ConfigError("expected an object of model name → {input_price, output_price, ...}", path=models_path)
    models = list(catalogue)
    prices = {
        m: (float(spec.get("input_price", 0.0)), float(spec.get("output_price", 0.0))) for m, spec in catalogue.items()
    }
    records = json.loads(train_path.read_text(encoding="utf-8"))
    if not isinstance(records, list):
        raise ConfigError("expected a list of {question, scores, cluster_id}", path=train_path)
    outcomes = np.full((len(records), len(models)), np.nan)
    prompts: list[str] = []
    clusters: list[str] = []
    for i, record in enumerate(records):
        try:
            prompts.append(str(record["question"]))
            scores = record["scores"]
        except (KeyError, TypeError):
            raise ConfigError(f"record {i}: needs 'question' and 'scores'", path=train_path) from None
        clusters.append(f"llmrouter/{record.get('cluster_id', '')}")
        for model, value in scores.items():
            if model in catalogue and value is not None:
                outcomes[i, models.index(model)] = float(value)
    # models.json lists more candidates than were measured; keep those with outcomes.
    measured = [j for j in range(len(models)) if not np.isnan(outcomes[:, j]).all()]
    models = [models[j] for j in measured]
    return OutcomeTable(
        prompts=prompts,
        models=models,
        outcomes=outcomes[:, measured],
        clusters=clusters,
        prices={m: prices[m] for m in models},
        sources=[str(train_path)],
    )


def load_outcomes(paths: Sequence[Path | str]) -> OutcomeTable:
    """Any mix of RouteLLM CSVs, LLMRouter JSON files, and directories holding either.

    A ``.json`` file is read with the ``models.json`` beside it; a directory is searched
    for both formats (``train.json`` + ``models.json``, and ``*.csv``).
    """
    tables: list[OutcomeTable] = []
    csv_paths: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError("file not found; pass outcome files (CSV or train.json) or directories", path=path)
        if path.is_file() and path.suffix == ".json":
            tables.append(load_llmrouter_json(path, path.parent / "models.json"))
        elif path.is_file():
            csv_paths.append(path)
        else:
            for train in sorted(path.rglob("train.json")):
                tables.append(load_llmrouter_json(train, train.parent / "models.json"))
            csv_paths.extend(sorted(path.rglob("*.csv")))
    if csv_paths:
        tables.insert(0, load_routellm_csv(csv_paths))
    if not tables:
        raise ConfigError(f"no outcome data found in {', '.join(map(str, paths))}")
    return merge(tables)
