"""The HTML report, rendered by a real headless Chromium, read back as text."""

from __future__ import annotations

import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphroute.cli import app as cli
from graphroute.feedback import feedback
from graphroute.traces.records import CallRecord
from graphroute.traces.render import money
from tests.traces.conftest import Recorded

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The flags a sandboxed, offline machine needs (no sandbox as root, no background networking).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _Text(HTMLParser):
    """Rendered DOM → the page's text and its table rows as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.chunks: list[str] = []
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("style", "title"):
            self._skip += 1
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.chunks.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


def render_in_chromium(page: Path, tmp_path: Path) -> _Text:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: apt-get install -y chromium (the CI installs it)")
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    parsed = _Text()
    parsed.feed(dom)
    return parsed


def add_budgeted_run(recorded: Recorded) -> None:
    """One more run with a budget it overspends, as a budget-paced plan would record it."""
    store = recorded.store()
    store.start_run("budgeted-run", "LangGraph-test", budget_usd=0.0001, plan="paced")
    for node, cost in (("plan", 0.0002), ("research", 0.0)):
        store.record_call(
            CallRecord(
                "budgeted-run",
                node,
                None,
                "big" if cost else "small",
                cost_usd=cost,
                latency_ms=50.0,
                input_tokens=30,
                output_tokens=5,
            )
        )
    store.end_run("budgeted-run", "error", "ProviderError: boom")
    store.close()


def test_the_report_renders_in_chromium_with_its_key_numbers(recorded: Recorded, tmp_path: Path) -> None:
    add_budgeted_run(recorded)
    feedback(recorded.run_ids[0], 0.5, traces=recorded.path)
    page = tmp_path / "report.html"

    result = CliRunner().invoke(cli, ["report", str(recorded.path), "--html", str(page)])

    assert result.exit_code == 0, result.output
    assert "<script" not in page.read_text() and "http" not in page.read_text().replace("http-equiv", "")
    rendered = render_in_chromium(page, tmp_path)
    calls = recorded.store().calls()
    total = math.fsum(call.cost_usd for call in calls)
    assert f"{money(total)} total spend" in rendered.text
    assert "16 calls" in rendered.text and "4 runs" in rendered.text
    rows = {row[0]: row for row in rendered.rows if row}
    draft = [call for call in calls if call.node == "write_report:draft"]
    latencies = [call.latency_ms for call in draft]
    assert rows["write_report:draft"][:3] == ["write_report:draft", "3", "big 3"]
    assert rows["write_report:draft"][5] == money(math.fsum(call.cost_usd for call in draft))
    assert rows["write_report:draft"][6:8] == [f"{np.percentile(latencies, p):,.0f}" for p in (50, 95)]
    assert rows["research"][1:3] == ["5", "small 5"]
    assert "1 run with a budget: spend $0.000200 of $0.000100 (200%); 1 over budget." in rendered.text
    assert rows["(whole run)"] == ["(whole run)", "1", "0.50"]
    assert rows["node 'write_report' is pinned to 'big'"][1] == "6"
    assert rows["downstream_failure"] == ["downstream_failure", "2"]  # the budgeted run failed after its calls


def test_an_empty_store_still_renders(tmp_path: Path) -> None:
    page = tmp_path / "empty.html"
    empty = tmp_path / "empty.sqlite"
    from graphroute import TraceStore

    TraceStore(empty).close()

    result = CliRunner().invoke(cli, ["report", str(empty), "--html", str(page)])

    assert result.exit_code == 0, result.output
    assert "No calls recorded." in page.read_text()
