"""OpenAI's Batch API on the scripted provider: uploads, batches, status polls and result files.

Kept apart from the HTTP server: ``ScriptedProvider`` hands each request here first and serves
it as a chat call only when this returns None. Every batch line is answered by the provider's
script, as a chat call would be (see ``graphroute.testing`` for the options that shape it).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any, Literal

from graphroute._openai_wire import chat_completion
from graphroute._scripted_replies import ReceivedRequest

if TYPE_CHECKING:
    from graphroute.testing import ScriptedProvider


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


class BatchEndpoints:
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
                completion = chat_completion(body, reply, f"chatcmpl-scripted-{next(self.provider._counter)}")
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
