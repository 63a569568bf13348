"""Test doubles for your own tests: a scripted OpenAI-compatible provider on 127.0.0.1.

``ScriptedProvider`` is a real HTTP server speaking OpenAI's chat-completions wire protocol
(JSON and server-sent-event streaming), so the real client code (``ChatOpenAI``, the ``openai``
SDK, graphroute's routing) runs against it. A script decides each answer::

    with ScriptedProvider(lambda request: Reply(content="4")) as provider:
        pool = ModelPool.from_dict({"models": {"m": provider.pool_entry()}})

    # fail the first two calls with 429 (Retry-After: 0), then answer
    provider = ScriptedProvider(Script([Reply(status=429), Reply(status=429), Reply(content="ok")]))

Every request received is kept in ``provider.requests`` (headers lower-cased, body parsed).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a status, a text (or tool calls), token counts, an optional delay."""

    content: str = "ok"
    status: int = 200
    prompt_tokens: int = 10
    completion_tokens: int = 2
    delay_s: float = 0.0
    retry_after: str | None = "0"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    drop: bool = False  # close the connection without answering


HANG = Reply(delay_s=30.0)  # longer than any sensible client timeout in a test
DROP = Reply(drop=True)


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class Script:
    """Replies in order; the last one repeats once the list is used up."""

    def __init__(self, replies: Iterable[Reply]) -> None:
        self._replies = list(replies)
        self._index = itertools.count()
        self._lock = threading.Lock()

    def __call__(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            index = next(self._index)
        return self._replies[min(index, len(self._replies) - 1)]


def _completion(body: dict[str, Any], reply: Reply, call_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = reply.tool_calls
    return {
        "id": call_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _stream_events(body: dict[str, Any], reply: Reply, call_id: str) -> list[dict[str, Any]]:
    base = {
        "id": call_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
    }
    words = reply.content.split(" ")
    events = [
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": word if i == 0 else " " + word},
                    "finish_reason": None,
                }
            ],
        }
        for i, word in enumerate(words)
    ]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append(
        {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }
    )
    return events


class Faults:
    """A fault-injecting script: with probability ``rate`` a fault (picked in turn), else ``healthy``.

    ``Faults(0.3)`` alternates 500, 429 with Retry-After, a hang and a dropped connection on
    30 % of calls. ``set_rate`` changes the rate while the server runs (an outage, a recovery).
    """

    def __init__(
        self, rate: float, faults: Iterable[Reply] | None = None, healthy: Reply | None = None, seed: int = 0
    ) -> None:
        import random

        self.rate = rate
        self.faults = list(faults or [Reply(status=500), Reply(status=429, retry_after="0"), HANG, DROP])
        self.healthy = healthy or Reply()
        self._rng = random.Random(seed)
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self.injected = 0

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            if self._rng.random() >= self.rate:
                return self.healthy
            self.injected += 1
            return self.faults[next(self._turn) % len(self.faults)]


class ScriptedProvider:
    """An OpenAI-compatible server on a free 127.0.0.1 port, answering from a script."""

    def __init__(self, script: Callable[[ReceivedRequest], Reply] | None = None) -> None:
        self.script = script or (lambda request: Reply())
        self.requests: list[ReceivedRequest] = []
        self._counter = itertools.count(1)
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send_json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                request = ReceivedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                provider.requests.append(request)
                reply = provider.script(request)
                if reply.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                call_id = f"chatcmpl-scripted-{next(provider._counter)}"
                if reply.status != 200:
                    headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
                    error = {
                        "error": {
                            "message": f"scripted failure {reply.status}: {reply.content}",
                            "type": "server_error",
                            "code": str(reply.status),
                        }
                    }
                    self._send_json(reply.status, error, headers)
                    return
                if not body.get("stream"):
                    self._send_json(200, _completion(body, reply, call_id), {})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for event in _stream_events(body, reply, call_id):
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True  # a hanging reply never blocks shutdown
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def pool_entry(self, **overrides: Any) -> dict[str, Any]:
        """A pool-file entry (as a dict) pointing at this provider."""
        return {
            "provider": "openai-compatible",
            "model": "scripted",
            "base_url": self.base_url,
            "max_retries": 0,
            **overrides,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ScriptedProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
