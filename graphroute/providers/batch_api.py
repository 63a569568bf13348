"""Opt-in provider Batch API: non-urgent calls collected and sent as one OpenAI batch job.

OpenAI's Batch API answers within a completion window (up to 24 h) at about half the price of
the same calls made one by one. A pool entry with ``batch_api = true`` gets this chat model
instead of a plain ``ChatOpenAI``; routing, retries, fallbacks and tracing see an ordinary
model whose calls happen to take a while::

    [models.bulk]
    provider = "openai"
    model = "gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"
    input_price = 0.075            # the batch price: half the synchronous one
    output_price = 0.30
    batch_api = true
    batch_window_ms = 200          # calls arriving within this window share one batch
    batch_poll_s = 30

How one batch runs (``BatchCollector``): calls for the model queue into the open window; when
it closes (``batch_window_ms`` after its first call, or at once when it holds
``batch_max_requests``), one JSONL file with a line per call (``custom_id``, ``method``,
``url``, ``body``) is uploaded, the batch is created, its status polled every
``batch_poll_s`` until it ends, and the output and error files are read back. Each waiting call
gets its own line's answer — an ``AIMessage`` with usage metadata, so tokens and cost are traced
as for any call — or its own error: one failed line fails only its call. A batch that has not
ended after ``batch_timeout_s`` (or that the provider expires) is cancelled and every call still
waiting raises ``BatchExpiredError`` naming the model and the batch id.

Callers wait on a future: a sync caller blocks its thread, an async one awaits without holding
its event loop; the upload and polling run on one background thread per batch, with the
official ``openai`` SDK. Answers carry ``response_metadata["graphroute_batch_id"]``, which is
how the call's trace row comes to say ``batched``. The API key is read from the entry's
``api_key_env`` like any OpenAI entry, sent only as the SDK's auth header, and removed from any
provider text quoted in an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

from graphroute.config import ModelSpec
from graphroute.errors import BatchExpiredError, BatchRequestError, EndpointUnreachableError, ProviderError

BATCH_ID_KEY = "graphroute_batch_id"
"""Where an answer says which provider batch it came from (``AIMessage.response_metadata``)."""

ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def batch_id_of(message: BaseMessage | None) -> str | None:
    """The provider batch an answer came from, or None for an answer sent on its own."""
    metadata = getattr(message, "response_metadata", None) or {}
    value = metadata.get(BATCH_ID_KEY)
    return str(value) if value else None


@dataclass(frozen=True)
class BatchAnswer:
    """One line of a finished batch: the chat-completion body the provider returned for a call."""

    batch_id: str
    body: dict[str, Any]


@dataclass
class _Pending:
    body: dict[str, Any]
    custom_id: str = field(default_factory=lambda: f"graphroute-{uuid.uuid4().hex}")
    answer: Future[BatchAnswer] = field(default_factory=Future)

    def resolve(self, answer: BatchAnswer | None = None, error: BaseException | None = None) -> None:
        """Hand over the answer or error, unless the caller already gave up (a cancelled task)."""
        if self.answer.done():
            return
        try:
            if error is not None:
                self.answer.set_exception(error)
            else:
                self.answer.set_result(answer)  # type: ignore[arg-type]
        except InvalidStateError:  # cancelled between the check and the hand-over
            pass


@dataclass
class _Window:
    calls: list[_Pending] = field(default_factory=list)
    timer: threading.Timer | None = None


class BatchCollector:
    """Collects one model's calls into batches and runs each batch to its end (module docstring)."""

    def __init__(self, spec: ModelSpec, client: Any, *, secret: str | None = None) -> None:
        self.spec = spec
        self.client = client  # an ``openai.OpenAI``; shared by the batches' threads (it is thread-safe)
        self._secret = secret
        self._window = _Window()
        self._lock = threading.Lock()
        self.batch_ids: list[str] = []

    def submit(self, body: Mapping[str, Any]) -> Future[BatchAnswer]:
        """Queue one chat-completion request body; the future resolves when its batch ends."""
        pending = _Pending(dict(body))
        full: _Window | None = None
        with self._lock:
            window = self._window
            window.calls.append(pending)
            if len(window.calls) >= self.spec.batch_max_requests:
                full = self._take(window)
            elif window.timer is None:
                window.timer = threading.Timer(self.spec.batch_window_ms / 1000, self._close, args=(window,))
                window.timer.daemon = True
                window.timer.start()
        if full is not None:
            self._launch(full)
        return pending.answer

    def _take(self, window: _Window) -> _Window:
        """Close ``window`` (caller holds the lock) and open a fresh one for later calls."""
        if window.timer is not None:
            window.timer.cancel()
        self._window = _Window()
        return window

    def _close(self, window: _Window) -> None:
        with self._lock:
            if window is not self._window:
                return  # already sent when it filled up
            self._take(window)
        self._launch(window)

    def _launch(self, window: _Window) -> None:
        name = f"graphroute-batch-{self.spec.name}"
        threading.Thread(target=self._run, args=(window.calls,), name=name, daemon=True).start()

    # -- one batch, start to end (on its own thread) -------------------------------------------
    def _run(self, calls: Sequence[_Pending]) -> None:
        batch_id = "(not created)"
        try:
            batch_id = self._create(calls)
            batch = self._wait(batch_id)
            lines = self._lines(batch)
            for call in calls:
                self._settle(call, batch_id, lines.get(call.custom_id), batch)
        except BaseException as error:  # every waiting caller must hear of it, whatever it is
            failure = error if isinstance(error, ProviderError) else self._translate(error, batch_id)
            for call in calls:
                call.resolve(error=failure)

    def _create(self, calls: Sequence[_Pending]) -> str:
        lines = [
            json.dumps({"custom_id": call.custom_id, "method": "POST", "url": ENDPOINT, "body": call.body})
            for call in calls
        ]
        content = ("\n".join(lines) + "\n").encode("utf-8")
        uploaded = self.client.files.create(file=("graphroute-batch.jsonl", content), purpose="batch")
        batch = self.client.batches.create(
            input_file_id=uploaded.id,
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata={"source": "graphroute", "model": self.spec.name},
        )
        with self._lock:
            self.batch_ids.append(batch.id)
        return str(batch.id)

    def _wait(self, batch_id: str) -> Any:
        """Poll until the batch ends; past ``batch_timeout_s`` cancel it and fail its calls."""
        deadline = time.monotonic() + self.spec.batch_timeout_s
        while True:
            batch = self.client.batches.retrieve(batch_id)
            if batch.status in TERMINAL:
                return batch
            if time.monotonic() >= deadline:
                self._cancel(batch_id)
                raise BatchExpiredError.timed_out(self.spec.name, batch_id, batch.status, self.spec.batch_timeout_s)
            time.sleep(min(self.spec.batch_poll_s, max(0.0, deadline - time.monotonic())))

    def _cancel(self, batch_id: str) -> None:
        with contextlib.suppress(Exception):  # best effort: the calls fail with the timeout either way
            self.client.batches.cancel(batch_id)

    def _lines(self, batch: Any) -> dict[str, dict[str, Any]]:
        """Every line of the batch's output and error files, by ``custom_id``."""
        if batch.status in ("failed", "cancelled"):
            reasons = "; ".join(
                f"{getattr(e, 'code', '') or 'error'}: {getattr(e, 'message', '')}"
                for e in (getattr(getattr(batch, "errors", None), "data", None) or [])
            )
            raise ProviderError(
                self._redact(
                    f"model {self.spec.name!r}: batch {batch.id} {batch.status}" + (f" ({reasons})" if reasons else "")
                ),
                model=self.spec.name,
            )
        lines: dict[str, dict[str, Any]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            text = self.client.files.content(file_id).text
            for raw in text.splitlines():
                if raw.strip():
                    line = json.loads(raw)
                    lines[str(line.get("custom_id"))] = line
        return lines

    def _settle(self, call: _Pending, batch_id: str, line: dict[str, Any] | None, batch: Any) -> None:
        model = self.spec.name
        if line is None:
            if batch.status == "expired":
                error: Exception = BatchExpiredError.expired(model, batch_id)
            else:
                error = ProviderError(f"model {model!r}: batch {batch_id} returned no line for this call", model=model)
            call.resolve(error=error)
            return
        response = line.get("response") or {}
        status = response.get("status_code")
        problem = line.get("error") or (response.get("body") or {}).get("error")
        if problem or status != 200:
            if isinstance(problem, Mapping) and problem.get("code") == "batch_expired":
                call.resolve(error=BatchExpiredError.expired(model, batch_id))
                return
            message = problem.get("message", problem) if isinstance(problem, Mapping) else (problem or "no answer")
            call.resolve(error=BatchRequestError(model, batch_id, status, self._redact(str(message))))
            return
        call.resolve(BatchAnswer(batch_id, response["body"]))

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[redacted]") if self._secret else text

    def _translate(self, error: BaseException, batch_id: str) -> ProviderError:
        """An SDK or network failure of the batch itself, as our error (status kept for retries)."""
        name = type(error).__name__
        cause = self._redact(f"{name}: {error}")
        if "Connection" in name or "Timeout" in name:
            return EndpointUnreachableError(self.spec.name, self.spec.base_url, cause)
        translated = ProviderError(f"model {self.spec.name!r}: batch {batch_id} failed: {cause}", model=self.spec.name)
        status = getattr(error, "status_code", None)
        if isinstance(status, int):
            translated.status_code = status  # type: ignore[attr-defined]  # read by the retry policy
        return translated


class BatchAPIChatModel(ChatOpenAI):
    """A ``ChatOpenAI`` whose calls go through the provider's Batch API (module docstring).

    Request bodies are built and answers parsed exactly as ``ChatOpenAI`` does, so tools,
    ``response_format`` and structured output behave the same; only the transport differs.
    Streaming is off: a batch has nothing to stream, so ``stream()`` yields the whole answer.
    """

    _collector: BatchCollector = PrivateAttr()

    @classmethod
    def from_spec(cls, spec: ModelSpec, *, api_key: str) -> BatchAPIChatModel:
        model = cls(
            model=spec.model,
            base_url=spec.base_url,
            api_key=api_key,  # type: ignore[arg-type]  # wrapped in SecretStr by the client
            timeout=spec.timeout_s,
            max_retries=0,
            disable_streaming=True,
            use_responses_api=False,
        )
        # The SDK retries the batch's own requests (upload, create, polls): one flaky poll must
        # not fail every call of a batch that is running fine.
        client = model.root_client.with_options(max_retries=spec.max_retries)
        model._collector = BatchCollector(spec, client, secret=api_key if spec.api_key_env else None)
        return model

    @property
    def _llm_type(self) -> str:
        return "openai-batch"

    @property
    def collector(self) -> BatchCollector:
        return self._collector

    def _batch_body(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], type | None]:
        """The chat-completion body ``ChatOpenAI`` would send, and a pydantic schema to parse into."""
        kwargs = {key: value for key, value in kwargs.items() if key != "ls_structured_output_format"}
        body = self._get_request_payload(messages, stop=stop, **kwargs)
        body.pop("stream", None)
        body.pop("stream_options", None)
        body.update(body.pop("extra_body", None) or {})
        schema = body.get("response_format")
        if isinstance(schema, type):
            from openai.lib._parsing._completions import type_to_response_format_param

            body["response_format"] = type_to_response_format_param(schema)
            return body, schema
        return body, None

    def _answer(self, answer: BatchAnswer, schema: type | None) -> ChatResult:
        result = self._create_chat_result(answer.body)
        for generation in result.generations:
            message = generation.message
            message.response_metadata[BATCH_ID_KEY] = answer.batch_id
            if schema is not None and isinstance(message, AIMessage) and isinstance(message.content, str):
                with contextlib.suppress(ValueError):  # a bad answer is reported by the output parser
                    message.additional_kwargs["parsed"] = schema.model_validate_json(message.content)  # type: ignore[attr-defined]
        return result

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body, schema = self._batch_body(messages, stop, kwargs)
        return self._answer(self._collector.submit(body).result(), schema)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        body, schema = self._batch_body(messages, stop, kwargs)
        answer = await asyncio.wrap_future(self._collector.submit(body))
        return self._answer(answer, schema)


def build_batch_api(spec: ModelSpec, *, api_key: str) -> BatchAPIChatModel:
    """The chat model for a pool entry with ``batch_api = true``."""
    return BatchAPIChatModel.from_spec(spec, api_key=api_key)
