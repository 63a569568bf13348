"""Bad input on the command line: one red ``error:`` line naming what to fix, exit status 1, no traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphroute.cli import app as cli

ROOT = Path(__file__).parents[2]
RESEARCH_ASSISTANT = ROOT / "examples" / "research_assistant.py"
APP = f"{RESEARCH_ASSISTANT}:app"
NOT_AN_APP = """
from typing import TypedDict


class State(TypedDict):
    question: str


settings = {"model": "cloud"}


def build_graph():
    raise RuntimeError("OPENAI_API_KEY is not set")
"""


@pytest.fixture(autouse=True)
def in_an_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No graphroute.toml in the current directory: only the one beside an app is found."""
    monkeypatch.chdir(tmp_path)


def refused(*args: str) -> str:
    """The command's output, once it has exited 1 on purpose; lines joined as rich wrapped them."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output or result.exception
    assert result.output.startswith("error: ")
    return " ".join(result.output.split())


def succeeded(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output or result.exception
    return result.output


def an_html_page(tmp_path: Path) -> Path:
    page = tmp_path / "graphroute-report.html"
    page.write_text("<!doctype html><html><body>spend per node</body></html>\n", encoding="utf-8")
    return page


def test_a_negative_budget_is_refused_instead_of_planned() -> None:
    output = refused("plan", APP, "--budget", "-1")

    assert "--budget must be > 0 (USD per run), got -1" in output
    assert "expected per run" not in output


def test_a_budget_that_is_not_a_number_is_refused() -> None:
    assert "--budget must be > 0" in refused("plan", APP, "--budget", "nan")


def test_a_cloud_share_above_one_is_refused_by_plan() -> None:
    assert "--cloud-share must be between 0 and 1, got 2" in refused("plan", APP, "--cloud-share", "2")


def test_a_negative_cloud_share_is_refused_by_calibrate() -> None:
    assert "--cloud-share must be between 0 and 1, got -0.5" in refused("calibrate", APP, "--cloud-share", "-0.5")


def test_plan_names_the_pool_file_beside_the_app() -> None:
    output = succeeded("plan", APP, "--budget", "0.001")

    assert output.splitlines()[0] == f"pool: {RESEARCH_ASSISTANT.parent / 'graphroute.toml'}"


def test_plan_without_a_pool_file_says_it_used_the_built_in_default(tmp_path: Path) -> None:
    app_file = shutil.copy(RESEARCH_ASSISTANT, tmp_path / "assistant.py")

    output = succeeded("plan", f"{app_file}:app", "--cloud-share", "0.5")

    assert output.splitlines()[0] == "pool: the built-in default (no graphroute.toml here or beside the app)"


def test_plan_names_the_pool_file_given_to_it() -> None:
    pool = RESEARCH_ASSISTANT.parent / "graphroute.toml"

    output = succeeded("calibrate", APP, "--cloud-share", "0.5", "--pool", str(pool))

    assert output.splitlines()[0] == f"pool: {pool}"


def test_report_on_a_file_that_is_not_a_trace_database_names_the_file(tmp_path: Path) -> None:
    page = an_html_page(tmp_path)
    before = page.read_bytes()

    output = refused("report", str(page), "--html", str(tmp_path / "out.html"))

    assert f"{page} is not a graphroute trace database" in output
    assert page.read_bytes() == before
    assert not list(tmp_path.glob(f"{page.name}-*")) and not (tmp_path / "out.html").exists()  # no -wal, no page


def test_replay_on_a_file_that_is_not_a_trace_database_names_the_file(tmp_path: Path) -> None:
    page = an_html_page(tmp_path)
    pool = RESEARCH_ASSISTANT.parent / "graphroute.toml"

    output = refused("replay", str(page), "--strategy", "all-local", "--pool", str(pool))

    assert f"{page} is not a graphroute trace database" in output


def test_inspecting_a_function_that_needs_arguments_says_it_was_called_as_a_factory() -> None:
    output = refused("inspect", "graphroute:optimize", "--no-draw")

    assert "graphroute:optimize is callable, so it was called as a zero-argument graph factory" in output
    assert "it raised TypeError: optimize() missing 1 required positional argument: 'graph'" in output


def test_a_factory_that_raises_is_named_with_what_it_raised(tmp_path: Path) -> None:
    (tmp_path / "not_an_app.py").write_text(NOT_AN_APP, encoding="utf-8")

    output = refused("inspect", "not_an_app.py:build_graph", "--no-draw")

    assert "not_an_app.py:build_graph is callable, so it was called as a zero-argument graph factory" in output
    assert "it raised RuntimeError: OPENAI_API_KEY is not set" in output


def test_a_dict_attribute_is_named_with_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "not_an_app.py").write_text(NOT_AN_APP, encoding="utf-8")

    output = refused("inspect", "not_an_app.py:settings", "--no-draw")

    assert "not_an_app.py:settings is a builtins.dict, not a LangGraph app" in output
    assert "point at a compiled graph, a StateGraph, an optimized app, or a function that takes no arguments" in output


def test_a_state_class_is_not_called_but_named_as_a_class(tmp_path: Path) -> None:
    (tmp_path / "not_an_app.py").write_text(NOT_AN_APP, encoding="utf-8")

    output = refused("plan", "not_an_app.py:State", "--budget", "0.01")

    assert "not_an_app.py:State is the class " in output and ".State, not a LangGraph app" in output


def test_feedback_into_a_missing_trace_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "traces.sqlite"

    output = refused("feedback", "run-1", "1", "--traces", str(missing))

    assert f"{missing}: trace database not found" in output and "unknown run id" not in output
    assert not list(tmp_path.glob("traces.sqlite*"))


def test_feedback_without_traces_and_nothing_recorded_yet_leaves_the_data_dir_alone(data_home: Path) -> None:
    output = refused("feedback", "run-1", "1")

    assert f"{data_home / 'traces.sqlite'}: trace database not found" in output
    assert not (data_home / "traces.sqlite").exists()


@pytest.mark.parametrize("command", [["plan", APP, "--budget", "0.01"], ["calibrate", APP, "--cloud-share", "0.2"]])
def test_a_mistyped_trace_file_is_refused_not_read_as_no_traces(command: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "trcaes.sqlite"

    output = refused(*command, "--traces", str(missing))

    assert f"{missing}: trace database not found" in output
    assert not missing.exists()


def test_the_feedback_api_does_not_make_up_a_database_either(tmp_path: Path) -> None:
    from graphroute import ConfigError, feedback

    with pytest.raises(ConfigError, match="trace database not found"):
        feedback("run-1", 1.0, traces=tmp_path / "runs" / "traces.sqlite")
    assert not (tmp_path / "runs").exists()


def test_inspect_refuses_a_plan_for_a_node_the_graph_does_not_have() -> None:
    output = refused("inspect", APP, "--no-draw", "--no-mermaid", "--plan", "reserch=local")

    assert "--plan names node(s) reserch that the graph does not have" in output and "research" in output
    assert "__start__" not in output
