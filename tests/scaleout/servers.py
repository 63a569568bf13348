"""Throwaway Redis and PostgreSQL servers on 127.0.0.1, started from Debian's packages.

Each server lives in its own temporary directory on a free port and is stopped by ``stop()``.
When a binary is missing, ``ServerUnavailable`` names the Debian package that provides it, so
a test can skip with a reason a reader can act on.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ServerUnavailable(RuntimeError):
    """A server binary is not installed (the message names the package) or would not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-800:] if log.exists() else ""


def _wait(check: object, what: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(f"{what} exited with {process.returncode}: {_tail(log)}")
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.1)
    raise ServerUnavailable(f"{what} did not answer within {timeout_s:.0f} s: {_tail(log)}")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    directory: Path
    logs: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGINT: PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_redis() -> Server:
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if binary is None:
        raise ServerUnavailable("redis-server is not installed (Debian package: apt-get install redis-server)")
    import redis

    directory = Path(tempfile.mkdtemp(prefix="graphroute-redis-"))
    port = free_port()
    log = directory / "redis.log"
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(directory), "--logfile", str(log)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        _wait(client.ping, "redis-server", process, log)
    finally:
        client.close()
    return Server(url, process, directory, [log])


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise ServerUnavailable("PostgreSQL server binaries not found (Debian package: apt-get install postgresql)")
    return Path(found[-1]).parent


def _as_postgres_user() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: run it as ``nobody`` then (signals still reach it directly)."""
    if os.geteuid() != 0:
        return {}
    return {"user": 65534, "group": 65534, "extra_groups": []}


def start_postgres() -> Server:
    bin_dir = _postgres_bin()
    as_user = _as_postgres_user()
    directory = Path(tempfile.mkdtemp(prefix="graphroute-pg-"))
    if as_user:
        os.chown(directory, 65534, 65534)  # nobody:nogroup owns the cluster
    data = directory / "data"
    log = directory / "postgres.log"
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "graphroute", "-E", "UTF8", "--no-sync"]
    init = subprocess.run(initdb, capture_output=True, text=True, cwd=directory, **as_user)
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise ServerUnavailable(f"initdb failed: {init.stderr[-800:]}")
    port = free_port()
    command = [str(bin_dir / "postgres"), "-D", str(data), "-k", str(directory), "-p", str(port)]
    # A throwaway cluster: durability settings off, room for 8 workers and the test's own clients.
    command += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off"]
    command += ["-c", "full_page_writes=off", "-c", "max_connections=100"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=directory, **as_user)
    url = f"postgresql://graphroute@127.0.0.1:{port}/postgres"
    import psycopg

    def ready() -> bool:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    _wait(ready, "postgres", process, log)
    return Server(url, process, directory, [log])


def fresh_database(server_url: str, name: str) -> str:
    """A new empty database on the server; returns its URL."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name
