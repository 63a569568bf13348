"""``graphroute serve``: the command, its token handling, and what it says without the extra."""

from __future__ import annotations

import os
import signal
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


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (read from /proc: Linux)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:  # the process ended while we looked
            continue
        if f"\nPPid:\t{pid}\n" in text:
            found.append(int(status.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_a_sigterm_stops_the_local_model_servers_too(local_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """docker stop / systemctl stop send SIGTERM: the llama.cpp server must not outlive the command."""
    pool = tmp_path / "graphroute.toml"
    pool.write_text(POOL_TOML)
    port = free_port()
    command = [sys.executable, "-m", "graphroute", "serve", "--pool", str(pool), "--port", str(port)]
    command += ["--traces", str(tmp_path / "t.sqlite")]  # --warm (the default): the model server starts first
    process = subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "graphroute serve did not come up"
                time.sleep(0.2)
        model_servers = children_of(process.pid)
        assert model_servers, "the warm start should have started a llama.cpp server"
    finally:
        process.terminate()  # SIGTERM
        process.wait(timeout=60)

    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in model_servers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in model_servers if Path(f"/proc/{pid}").exists()]
    for pid in left:  # do not leave an orphan behind when this fails
        os.kill(pid, signal.SIGKILL)
    assert not left, "the llama.cpp server outlived graphroute serve"
