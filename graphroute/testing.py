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
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal


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


BatchOutcome = Literal["completed", "expired", "failed"]


@dataclass
class ReceivedFile:
    """A file uploaded to the stand-in (``POST /v1/files``): raw bytes, as sent."""

    id: str
    purpose: str
    filename: str
    content: bytes
    headers: dict[str, str]


@dataclass
class ReceivedBatch:
    """A batch created on the stand-in: its input lines (parsed) and every status it reported."""

    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any]
    lines: list[dict[str, Any]]
    headers: dict[str, str]
    status: str = "validating"
    statuses: list[str] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0
    created_at: int = field(default_factory=lambda: int(time.time()))


_Answer = tuple[int, bytes, str]  # status, body, content type


def _json_answer(status: int, payload: dict[str, Any]) -> _Answer:
    return status, json.dumps(payload).encode(), "application/json"


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form fields of a multipart body: name → (filename, bytes)."""
    message = BytesParser(policy=policy.default).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


class _BatchEndpoints:
    """OpenAI's Batch API on the stand-in (see the module docstring)."""

    def __init__(self, provider: ScriptedProvider) -> None:
        self.provider = provider
        self.contents: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def answer(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> _Answer | None:
        """The answer to a Batch API request, or None when ``path`` is not one."""
        path = path.split("?", 1)[0]
        if method == "POST" and path.endswith("/files"):
            return self._upload(headers, raw)
        if method == "POST" and path.endswith("/batches"):
            return self._create(headers, json.loads(raw or b"{}"))
        if method == "POST" and (match := re.search(r"/batches/([^/]+)/cancel$", path)):
            return self._cancel(match.group(1))
        if method == "GET" and (match := re.search(r"/batches/([^/]+)$", path)):
            return self._retrieve(match.group(1))
        if method == "GET" and (match := re.search(r"/files/([^/]+)/content$", path)):
            content = self.contents.get(match.group(1))
            if content is None:
                return _json_answer(404, {"error": {"message": f"no file {match.group(1)}", "type": "not_found"}})
            return 200, content, "application/octet-stream"
        return None

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-scripted-{next(self._ids)}"

    def _upload(self, headers: dict[str, str], raw: bytes) -> _Answer:
        fields = _multipart(headers.get("content-type", ""), raw)
        filename, content = fields.get("file", (None, b""))
        purpose = fields.get("purpose", (None, b""))[1].decode()
        with self._lock:
            upload = ReceivedFile(self._new_id("file"), purpose, filename or "upload", content, headers)
            self.provider.files.append(upload)
            self.contents[upload.id] = content
        return _json_answer(200, self._file_json(upload.id, upload.filename, purpose, len(content)))

    @staticmethod
    def _file_json(file_id: str, filename: str, purpose: str, size: int) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    def _create(self, headers: dict[str, str], body: dict[str, Any]) -> _Answer:
        content = self.contents.get(str(body.get("input_file_id")))
        if content is None:
            return _json_answer(400, {"error": {"message": "input_file_id names no uploaded file", "type": "invalid"}})
        lines = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
        with self._lock:
            batch = ReceivedBatch(
                id=self._new_id("batch"),
                input_file_id=str(body["input_file_id"]),
                endpoint=str(body.get("endpoint")),
                completion_window=str(body.get("completion_window")),
                metadata=dict(body.get("metadata") or {}),
                lines=lines,
                headers=headers,
            )
            self.provider.batches.append(batch)
        return _json_answer(200, self._batch_json(batch))

    def _find(self, batch_id: str) -> ReceivedBatch | None:
        return next((batch for batch in self.provider.batches if batch.id == batch_id), None)

    def _retrieve(self, batch_id: str) -> _Answer:
        with self._lock:
            batch = self._find(batch_id)
            if batch is None:
                return _json_answer(404, {"error": {"message": f"no batch {batch_id}", "type": "not_found"}})
            if batch.status not in ("completed", "expired", "failed", "cancelled"):
                polls = self.provider.batch_polls
                if polls is None or len(batch.statuses) + 1 < polls:
                    batch.status = "in_progress"
                else:
                    self._finish(batch, self.provider.batch_outcome)
            batch.statuses.append(batch.status)
            return _json_answer(200, self._batch_json(batch))

    def _cancel(self, batch_id: str) -> _Answer:
        with self._lock:
            batch = self._find(batch_id)
            if batch is None:
                return _json_answer(404, {"error": {"message": f"no batch {batch_id}", "type": "not_found"}})
            batch.status = "cancelled"
            return _json_answer(200, self._batch_json(batch))

    def _finish(self, batch: ReceivedBatch, outcome: BatchOutcome) -> None:
        """End the batch: answer every line with the script into an output and an error file."""
        batch.status = outcome
        if outcome == "failed":
            return
        outputs, errors = [], []
        for line in batch.lines:
            request_id = self._new_id("req")
            entry: dict[str, Any] = {"id": f"batch_{request_id}", "custom_id": line.get("custom_id")}
            if outcome == "expired":
                message = "This request could not be executed before the completion window expired."
                errors.append({**entry, "response": None, "error": {"code": "batch_expired", "message": message}})
                continue
            body = line.get("body") or {}
            reply = self.provider.script(ReceivedRequest(str(line.get("url")), batch.headers, body))
            if reply.status == 200 and not reply.drop:
                completion = _completion(body, reply, f"chatcmpl-scripted-{next(self.provider._counter)}")
                response = {"status_code": 200, "request_id": request_id, "body": completion}
                outputs.append({**entry, "response": response, "error": None})
            else:
                status = 500 if reply.drop else reply.status
                error = {"message": f"scripted failure {status}: {reply.content}", "type": "server_error"}
                response = {"status_code": status, "request_id": request_id, "body": {"error": error}}
                errors.append({**entry, "response": response, "error": None})
        batch.completed, batch.failed = len(outputs), len(errors)
        for kind, rows in (("output", outputs), ("error", errors)):
            if rows:
                file_id = self._new_id("file")
                self.contents[file_id] = "".join(json.dumps(row) + "\n" for row in rows).encode()
                setattr(batch, f"{kind}_file_id", file_id)

    @staticmethod
    def _batch_json(batch: ReceivedBatch) -> dict[str, Any]:
        errors = None
        if batch.status == "failed":
            data = [{"code": "invalid_request", "message": "scripted batch failure", "line": None, "param": None}]
            errors = {"object": "list", "data": data}
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": errors,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": batch.created_at,
            "request_counts": {"total": len(batch.lines), "completed": batch.completed, "failed": batch.failed},
            "metadata": batch.metadata,
        }


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
        self._batch_api = _BatchEndpoints(self)
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
