"""The ollama provider through the real ChatOllama client, against a local server speaking /api/chat.

No Ollama server can be installed here, so a small HTTP server answers Ollama's wire protocol
(newline-delimited JSON) and records what the client sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from langchain_core.messages import HumanMessage

from graphroute import ModelPool, StaticRouter
from graphroute.routing import dispatch
from graphroute.routing.session import RoutingSession


class OllamaChat(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        OllamaChat.requests.append(body)
        question = body["messages"][-1]["content"]
        lines = [
            {
                "model": body["model"],
                "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": f"echo: {question}"},
                "done": False,
            },
            {
                "model": body["model"],
                "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 11,
                "eval_count": 3,
                "total_duration": 1000,
            },
        ]
        payload = "".join(json.dumps(line) + "\n" for line in lines).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def ollama_url() -> Iterator[str]:
    OllamaChat.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), OllamaChat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_ollama_pool_model_answers_and_gets_the_callers_parameters(ollama_url: str) -> None:
    pool = ModelPool.from_dict(
        {"models": {"box": {"provider": "ollama", "model": "llama3.1:8b", "base_url": ollama_url}}}
    )
    session = RoutingSession(pool=pool, router=StaticRouter("box"))
    messages = [HumanMessage("hello")]
    call = dispatch.prepare(session, messages, {"langgraph_node": "greet"}, requested="gpt-4o")

    class Caller:  # what a node's own model carries: temperature and max tokens
        temperature = 0.0
        max_tokens = 7

    result = dispatch.generate(call, Caller(), messages, None, None, {})  # type: ignore[arg-type]

    assert result.generations[0].message.content == "echo: hello"
    [sent] = OllamaChat.requests
    assert sent["model"] == "llama3.1:8b"
    assert sent["options"]["temperature"] == 0.0 and sent["options"]["num_predict"] == 7
    [record] = session.calls
    assert (record.node, record.model, record.input_tokens, record.output_tokens) == ("greet", "box", 11, 3)
    assert pool["box"].locality == "local"
