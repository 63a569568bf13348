"""``graphroute serve``: the command, its token handling, and what it says without the extra."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from graphroute.cli import app
from graphroute.cli.serve import is_loopback
from tests.server.conftest import free_port

POOL_TOML = """
[models.local]
provider = "llamacpp"
model = "qwen2.5-coder-0.5b-instruct"
"""


def test_help_names_the_options_but_never_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHROUTE_SERVER_TOKEN", "tok-in-env-123")

    result = CliRunner().invoke(app, ["serve", "--help"])

    assert result.exit_code == 0
    for option in ("--pool", "--host", "--port", "--token", "--traces", "GRAPHROUTE_SERVER_TOKEN"):
        assert option in result.output
    assert "tok-in-env-123" not in result.output


def test_without_the_server_extra_it_says_which_pip_line_to_run() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["fastapi"] = None  # `import fastapi` now fails, as without the extra
        from typer.testing import CliRunner
        from graphroute.cli import app
        result = CliRunner().invoke(app, ["serve"])
        print("exit", result.exit_code)
        print(result.output)
    """)

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert "exit 1" in result.stdout, result.stderr
    assert "pip install 'graphroute[server]'" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("192.168.1.5", False)],
)
def test_only_loopback_addresses_count_as_private(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_command_serves_and_checks_the_token(tmp_path: Path) -> None:
    pool = tmp_path / "graphroute.toml"
    pool.write_text(POOL_TOML)
    port = free_port()
    env = {**os.environ, "GRAPHROUTE_SERVER_TOKEN": "cli-token-42"}
    command = [
        sys.executable,
        "-m",
        "graphroute",
        "serve",
        "--pool",
        str(pool),
        "--port",
        str(port),
        "--no-warm",
        "--traces",
        str(tmp_path / "t.sqlite"),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "graphroute serve did not come up"
                time.sleep(0.2)
        stranger = httpx.get(base + "/v1/models")
        friend = httpx.get(base + "/v1/models", headers={"Authorization": "Bearer cli-token-42"})
    finally:
        process.terminate()
        process.wait(timeout=20)

    assert stranger.status_code == 401
    assert [entry["id"] for entry in friend.json()["data"]] == ["router-default", "local"]
