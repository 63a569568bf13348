"""Test doubles for your own tests: a scripted OpenAI-compatible provider on 127.0.0.1.

``ScriptedProvider`` is a real HTTP server speaking OpenAI's chat-completions wire protocol
(JSON and server-sent-event streaming), so the real client code (``ChatOpenAI``, the ``openai``
SDK, graphroute's routing) runs against it. A script decides each answer::

    with ScriptedProvider(lambda request: Reply(content="4")) as provider:
        pool = ModelPool.from_dict({"models": {"m": provider.pool_entry()}})

    # fail the first two calls with 429 (Retry-After: 0), then answer
    provider = ScriptedProvider(Script([Reply(status=429), Reply(status=429), Reply(content="ok")]))

Every request received is kept in ``provider.requests`` (headers lower-cased, body parsed).

It also speaks OpenAI's Batch API (``POST /v1/files``, ``POST /v1/batches``, ``GET
/v1/batches/{id}``, ``GET /v1/files/{id}/content``, ``POST /v1/batches/{id}/cancel``): a batch
reports ``validating``, then ``in_progress`` until it has been polled ``batch_polls`` times, then
``batch_outcome`` (``"completed"``, ``"expired"`` or ``"failed"``); each line is answered by the
same script as a chat call. Uploads are kept in ``provider.files`` and batches, with their parsed
lines and the statuses they reported, in ``provider.batches``::

    provider = ScriptedProvider(batch_polls=3)            # completes on the third status check
    provider = ScriptedProvider(batch_polls=None)         # never completes (a timeout test)

This module is the HTTP server and the public face of its parts: replies and scripts live in
``graphroute._scripted_replies``, the wire payloads in ``graphroute._openai_wire`` and the Batch
API in ``graphroute._batch_api``; import them all from here.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from graphroute._batch_api import BatchEndpoints, BatchOutcome, ReceivedBatch, ReceivedFile
from graphroute._openai_wire import chat_completion, chat_completion_chunks
from graphroute._scripted_replies import DROP, HANG, Faults, ReceivedRequest, Reply, Script

__all__ = [
    "DROP",
    "HANG",
    "BatchOutcome",
    "Faults",
    "ReceivedBatch",
    "ReceivedFile",
    "ReceivedRequest",
    "Reply",
    "Script",
    "ScriptedProvider",
]


class ScriptedProvider:
    """An OpenAI-compatible server on a free 127.0.0.1 port, answering from a script."""

    def __init__(
        self,
        script: Callable[[ReceivedRequest], Reply] | None = None,
        *,
        batch_polls: int | None = 2,
        batch_outcome: BatchOutcome = "completed",
    ) -> None:
        self.script = script or (lambda request: Reply())
        self.requests: list[ReceivedRequest] = []
        self.batch_polls = batch_polls
        self.batch_outcome: BatchOutcome = batch_outcome
        self.files: list[ReceivedFile] = []
        self.batches: list[ReceivedBatch] = []
        self._batch_api = BatchEndpoints(self)
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

            def _batch_api(self, method: str, raw: bytes) -> bool:
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = provider._batch_api.answer(method, self.path, headers, raw)
                if answer is None:
                    return False
                status, data, content_type = answer
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return True

            def do_GET(self) -> None:
                if self._batch_api("GET", b""):
                    return
                self._send_json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self._batch_api("POST", raw):
                    return
                body = json.loads(raw or b"{}")
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
                    self._send_json(200, chat_completion(body, reply, call_id), {})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for event in chat_completion_chunks(body, reply, call_id):
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
