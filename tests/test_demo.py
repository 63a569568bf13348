"""`graphroute demo` runs the example app on local models with no key and prints the bill."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphroute.cli import app


def test_the_demo_runs_without_keys_and_labels_the_cloud_stand_in(
    local_pool: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "160")

    result = CliRunner().invoke(
        app, ["demo", "--question", "What is the capital of Italy?", "--traces", str(tmp_path / "demo.sqlite")]
    )

    assert result.exit_code == 0, result.output
    out = result.output
    assert "cloud stand-in" in out
    for column in ("node", "model", "calls", "in tok", "latency s", "cost $", "all-cloud $"):
        assert column in out
    for node in ("plan", "write_report:draft", "write_report:title", "total"):
        assert node in out
    assert (tmp_path / "demo.sqlite").exists()
