"""Small outcome files in both public formats, written under tmp_path."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"

FACTS = [
    "What is the capital of Japan?",
    "Which planet is known as the red planet?",
    "What is the boiling point of water at sea level in Celsius?",
    "Who painted the ceiling of the Sistine Chapel?",
    "What is the largest ocean on Earth?",
    "Which gas do plants absorb from the air?",
]
PUZZLES = [
    "A farmer has 17 sheep; all but 9 run away, then he buys 3 times as many as remain. How many now?",
    "Tom reads 12 pages on Monday and 25% more each day after. How many pages has he read by Thursday?",
    "A rectangle's length is 3 cm more than twice its width and its area is 65 cm^2. Find its perimeter.",
    "Two pipes fill a pool in 4 and 6 hours and a drain empties it in 12. How long to fill with all open?",
    "A price rises 20%, then falls 20%, then rises 10%. What is the net change in percent?",
    "Sara saves $15 a week and spends a third of her savings every 4 weeks. How much after 12 weeks?",
]


@pytest.fixture
def routellm_dir(tmp_path: Path) -> Path:
    """A RouteLLM-style CSV (weak fails the puzzles) plus a contamination list naming one puzzle."""
    directory = tmp_path / "routellm" / "mini"
    directory.mkdir(parents=True)
    with (directory / "mini_responses.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", WEAK, STRONG, f"{WEAK}_response", f"{STRONG}_response"])
        for prompt in FACTS:
            writer.writerow([prompt, True, True, "answer,\nwith a comma", "answer"])
        for prompt in PUZZLES:
            writer.writerow([prompt, False, True, "wrong", "right"])
    contaminated = {"train_prompt": "...", "eval_prompt": PUZZLES[-1]}
    (directory / "contaminated_prompts.jsonl").write_text(json.dumps(contaminated) + "\n", encoding="utf-8")
    return directory


@pytest.fixture
def llmrouter_dir(tmp_path: Path) -> Path:
    """LLMRouter-style train.json + models.json with a cheap and a pricey model (and one never measured)."""
    directory = tmp_path / "llmrouter"
    directory.mkdir()
    models = {
        "small-9b": {"size": "9B", "input_price": 0.1, "output_price": 0.1, "model": "x/small", "feature": "small"},
        "big-51b": {"size": "51B", "input_price": 0.9, "output_price": 0.9, "model": "x/big", "feature": "big"},
        "unused-122b": {"size": "122B", "input_price": 1.8, "output_price": 1.8, "model": "x/u", "feature": "u"},
    }
    records = [{"question": q, "cluster_id": 1, "scores": {"small-9b": 1.0, "big-51b": 1.0}} for q in FACTS]
    records += [{"question": q, "cluster_id": 0, "scores": {"small-9b": 0.0, "big-51b": 1.0}} for q in PUZZLES]
    (directory / "models.json").write_text(json.dumps(models), encoding="utf-8")
    (directory / "train.json").write_text(json.dumps(records), encoding="utf-8")
    return directory
