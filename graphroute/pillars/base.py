"""The contract every routing pillar fulfils: a ``RouteRequest`` in, a ``Signal`` out.

A pillar scores how hard a request is and what constraints bind it; it never picks a model
itself. The router combines the signals with the node's plan to choose. Keeping the pillar
contract this small is what lets rules, embeddings, a judge model and a bandit be swapped,
cascaded and replayed independently.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage

# Run metadata naming a call's output limit (max_tokens), for routers that estimate its cost.
MAX_TOKENS_KEY = "graphroute_max_tokens"


@dataclass(frozen=True)
class RouteRequest:
    """One chat-model call as the router sees it.

    ``node`` is the LangGraph node that made the call (``parent:inner`` inside a subgraph),
    or ``None`` outside a graph. ``requested_model`` is what the calling code asked for
    (e.g. ``"gpt-4o"``); routing may or may not honour it.
    """

    messages: Sequence[BaseMessage]
    node: str | None = None
    requested_model: str | None = None
    tools: Sequence[Mapping[str, Any]] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """All message contents joined: what length and content rules look at."""
        parts: list[str] = []
        for message in self.messages:
            content = message.content
            if isinstance(content, str):
                parts.append(content)
            else:
                parts.extend(str(block.get("text", "")) if isinstance(block, dict) else str(block) for block in content)
        return "\n".join(parts)

    @property
    def last_user_text(self) -> str:
        """The newest human message: the part a difficulty estimate should read."""
        for message in reversed(self.messages):
            if message.type == "human":
                return message.content if isinstance(message.content, str) else self.text
        return self.text


@dataclass(frozen=True)
class Signal:
    """A pillar's verdict on one request.

    ``difficulty`` is in [0, 1] (1 = needs the strongest model); ``confidence`` in [0, 1]
    says how much the cascade may trust it and exit early. ``local_only`` is a hard
    constraint (privacy, data residency) that no later pillar or fallback may override.
    """

    pillar: str
    difficulty: float | None = None
    confidence: float = 0.0
    local_only: bool = False
    model: str | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.difficulty is not None and not 0.0 <= self.difficulty <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {self.difficulty}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")


class Pillar(ABC):
    """Turns a request into a signal; sync and async twins, like LangGraph's contracts."""

    name: str = "pillar"

    @abstractmethod
    def score(self, request: RouteRequest) -> Signal:
        """Score one request."""

    async def ascore(self, request: RouteRequest) -> Signal:
        """Score one request without blocking the event loop (default: run ``score``)."""
        return self.score(request)
