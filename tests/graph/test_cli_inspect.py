"""`graphroute inspect`: every example app, by file path or module path, with and without traces."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphroute import optimize
from graphroute.cli import app as cli
from tests.graph.fakes import mirror_pool
from tests.graph.shapes import make_loop

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted(path.name for path in (ROOT / "examples").glob("*.py") if path.stem != "__init__")


@pytest.fixture(autouse=True)
def at_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, ["inspect", *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_prints_its_table_mermaid_and_picture(example: str, tmp_path: Path) -> None:
    picture = tmp_path / "graph.png"

    output = run(f"examples/{example}:app", "--png", str(picture))

    assert "expected per run" in output and "criticality" in output
    assert "flowchart TD" in output
    assert picture.stat().st_size > 1000 and picture.read_bytes()[:4] == b"\x89PNG"


def test_the_research_assistant_is_priced_with_the_pool_beside_it() -> None:
    output = run("examples/research_assistant.py:app", "--no-draw")

    assert "pool: examples/graphroute.toml" in output
    assert "write_report:draft" in output and "cloud" in output
    assert "$5.85e-04" in output  # three cloud calls of 500 + 200 tokens at 0.15 / 0.60 per 1M


def test_a_module_path_and_a_graph_factory_work_too() -> None:
    output = run("examples.research_assistant:build_graph", "--no-draw", "--no-mermaid")

    assert "answer_directly" in output


def test_a_plan_on_the_command_line_overrides_the_pool_file() -> None:
    output = run("examples/research_assistant.py:app", "--plan", "write_report=local", "--no-draw", "--no-mermaid")

    assert "$1.95e-04" in output.split("total")[1]  # only plan left on cloud


def test_traces_in_the_data_dir_are_learned_from(data_home: Path) -> None:
    built = make_loop()
    app = optimize(built.graph, pool=mirror_pool(built.models), routes=built.routes)  # default trace store
    for _ in range(4):
        app.invoke({"question": "q"})  # reviews: revise, revise, approve, then revise...

    output = run("tests/graph/shapes.py:loop_app", "--no-draw", "--no-mermaid")

    assert "learned from 4 traced runs" in output
    assert "loop ['draft', 'review']" in output and "(traces)" in output


def test_without_matplotlib_there_is_no_png_but_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the plot extra were not installed

    output = run("examples/review_loop.py:app", "--no-mermaid")

    assert "pip install 'graphroute[plot]'" in output


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("examples/research_assistant.py", "is not module:attr"),
        ("examples/nowhere.py:app", "no such file"),
        ("examples/research_assistant.py:missing", "has no attribute 'missing'"),
        ("examples/research_assistant.py:ResearchState", "not a LangGraph app; point at a compiled graph"),
    ],
)
def test_a_bad_target_says_what_to_fix(target: str, message: str) -> None:
    result = CliRunner().invoke(cli, ["inspect", target, "--no-draw"])

    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
