"""Loading outcome data in both public formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphroute.errors import ConfigError
from graphroute.evaluation.data import (
    OutcomeTable,
    full_success,
    load_llmrouter_json,
    load_outcomes,
    load_routellm_csv,
)
from graphroute.evaluation.training import reference_tiers

from .conftest import FACTS, PUZZLES, STRONG, WEAK


def test_routellm_csv_is_decontaminated(routellm_dir: Path) -> None:
    table = load_routellm_csv(routellm_dir)
    assert table.models == [WEAK, STRONG]  # response text columns are not models
    assert len(table) == len(FACTS) + len(PUZZLES) - 1
    assert PUZZLES[-1] not in table.prompts
    assert table.clusters == ["mini_responses"] * len(table)
    assert table.accuracy()[STRONG] == 1.0
    assert len(load_routellm_csv(routellm_dir, decontaminate=False)) == len(FACTS) + len(PUZZLES)


def test_llmrouter_json_keeps_measured_models_and_prices(llmrouter_dir: Path) -> None:
    table = load_llmrouter_json(llmrouter_dir / "train.json", llmrouter_dir / "models.json")
    assert table.models == ["small-9b", "big-51b"]
    assert table.prices == {"small-9b": (0.1, 0.1), "big-51b": (0.9, 0.9)}
    assert table.outcomes.shape == (len(FACTS) + len(PUZZLES), 2)
    assert table.clusters is not None and table.clusters[0] == "llmrouter/1"


def test_both_formats_merge_with_unknown_cells(routellm_dir: Path, llmrouter_dir: Path) -> None:
    table = load_outcomes([routellm_dir.parent, llmrouter_dir])
    assert table.models == [WEAK, STRONG, "small-9b", "big-51b"]
    assert np.isnan(table.outcomes[0, 2]) and np.isnan(table.outcomes[-1, 0])
    weak, strong = reference_tiers(table)
    assert weak == [WEAK, "small-9b"]  # least accurate without prices, cheapest with them
    assert strong == [STRONG, "big-51b"]


def test_a_json_file_finds_its_models_json(llmrouter_dir: Path) -> None:
    assert load_outcomes([llmrouter_dir / "train.json"]).models == ["small-9b", "big-51b"]


def test_bad_input_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("question,a,b\nhi,True,False\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="prompt"):
        load_routellm_csv(bad)
    flags = tmp_path / "flags.csv"
    flags.write_text("prompt,a\nhi,maybe\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="row 2"):
        load_routellm_csv(flags)
    with pytest.raises(ConfigError, match="not found"):
        load_outcomes([tmp_path / "missing"])


def test_partial_credit_counts_as_a_failure_when_fitting_to_success() -> None:
    table = OutcomeTable(["a", "b", "c"], ["m"], np.array([[1.0], [0.5], [np.nan]]))

    success = table.successes()

    assert success.outcomes[:2, 0].tolist() == [1.0, 0.0]  # half a score is not half a success
    assert np.isnan(success.outcomes[2, 0])  # an unmeasured cell stays unmeasured
    assert table.outcomes[1, 0] == 0.5  # the original table is left as it was
    assert full_success(np.array([0.0, 1.0, 0.999])).tolist() == [0.0, 1.0, 0.0]
