"""Privacy canary: prompts holding personal data never reach a cloud model, whatever the entry point.

The setting is the worst case for privacy: the bandit's store already favours the cloud model
(seeded with its successes and the local model's poor rewards), the local model fails now and
then, and its only configured fallback is a cloud model. PII canaries (an e-mail address, a
card number, an IBAN, a social security number, a phone number) are sent through ``optimize``
(invoke, ainvoke, stream), ``RoutedChatModel`` (invoke, stream, batch) and the
OpenAI-compatible server (plain and streaming). The two stand-in cloud servers must receive
none of them; the local stand-in receives them; a call the local model fails is an error,
never a leak. A control prompt without PII does reach the cloud: the setting really routes there.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import httpx
import pytest
from langchain_openai import ChatOpenAI
from langgraph.graph import StateGraph

from graphroute import GraphRouteError, ModelPool, RoutedChatModel, optimize
from graphroute.pillars.bandit import BanditPillar
from graphroute.pillars.rules import RulesPillar
from graphroute.providers.resilience import BREAKERS
from graphroute.routing.cascade import CascadeRouter
from graphroute.server import create_app
from graphroute.testing import ReceivedRequest, Reply, ScriptedProvider
from tests.apps import one_node
from tests.server.conftest import serving

CANARIES = {
    "email": "canary.7f3e@mailbox-test.org",
    "card": "4111 1111 1111 1111",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "ssn": "219-09-9999",
    "phone": "+44 20 7946 0958",
}
PROMPTS = [
    f"Send the invoice to {CANARIES['email']} please.",
    f"My card is {CANARIES['card']}; is it still valid?",
    f"Transfer the rent to IBAN {CANARIES['iban']} today.",
    f"Fill in the form for SSN {CANARIES['ssn']}.",
    f"Call me back on {CANARIES['phone']} tomorrow.",
]
CONTROL = "What is the capital of France?"


class FlakyLocal:
    """The local stand-in: answers, except every third request (HTTP 500)."""

    def __init__(self) -> None:
        self._count = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, request: ReceivedRequest) -> Reply:
        with self._lock:
            number = next(self._count)
        return Reply(status=500, content="local hiccup") if number % 3 == 0 else Reply(content="local answer")


@dataclass
class Setting:
    pool: ModelPool
    router: CascadeRouter
    local: ScriptedProvider
    clouds: tuple[ScriptedProvider, ...]

    def leaked(self) -> list[str]:
        """Canaries found in any request a cloud stand-in received."""
        bodies = [json.dumps(request.body) for cloud in self.clouds for request in cloud.requests]
        return [kind for kind, canary in CANARIES.items() if any(canary in body for body in bodies)]

    def reached_local(self) -> list[str]:
        bodies = [json.dumps(request.body) for request in self.local.requests]
        return [kind for kind, canary in CANARIES.items() if any(canary in body for body in bodies)]

    def control_reached_cloud(self) -> bool:
        return any(CONTROL in json.dumps(request.body) for cloud in self.clouds for request in cloud.requests)


def cloud_favouring_bandit(tmp_path: Path) -> BanditPillar:
    """A bandit whose store already says: the cloud model is excellent, the local one poor."""
    bandit = BanditPillar(store=tmp_path / "bandit.sqlite", seed=1)
    for node in ("*", "answer"):
        for bucket in ("easy", "medium", "hard", "any"):
            for _ in range(10):
                bandit.update(f"{node}|{bucket}", 1.0, model="cloud")
                bandit.update(f"{node}|{bucket}", -0.5, model="local")
    return bandit


@pytest.fixture
def setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setting]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-the-app-own-key")  # the app's ChatOpenAI needs one to be built
    BREAKERS.reset()
    with (
        ScriptedProvider(FlakyLocal()) as local,
        ScriptedProvider(lambda request: Reply(content="cloud answer")) as cloud,
        ScriptedProvider(lambda request: Reply(content="backup answer")) as backup,
    ):
        pool = ModelPool.from_dict(
            {
                "models": {
                    "local": local.pool_entry(locality="local", fallbacks=["cloud"]),  # its only fallback: cloud
                    "cloud": cloud.pool_entry(input_price=2.5, output_price=10.0, fallbacks=["cloud-backup"]),
                    "cloud-backup": backup.pool_entry(input_price=3.0, output_price=12.0),
                }
            }
        )
        router = CascadeRouter(
            pool, [RulesPillar()], bandit=cloud_favouring_bandit(tmp_path), ladder=["local", "cloud"]
        )
        yield Setting(pool, router, local, (cloud, backup))
    BREAKERS.reset()


class Question(TypedDict, total=False):
    prompt: str
    answer: str


def answer(state: Question) -> Question:
    reply = ChatOpenAI(model="gpt-4o", temperature=0).invoke(state["prompt"])
    return {"answer": str(reply.content)}


def question_graph() -> StateGraph:
    return one_node(Question, answer)


def attempt(call: object) -> str:
    """The answer, or the name of our error when no local model could answer (never a leak)."""
    try:
        return str(call() if callable(call) else call)
    except GraphRouteError as error:
        return type(error).__name__


async def test_optimize_keeps_every_canary_local(setting: Setting, tmp_path: Path) -> None:
    app = optimize(question_graph(), pool=setting.pool, router=setting.router, traces=tmp_path / "t.sqlite")

    outcomes = [attempt(lambda p=p: app.invoke({"prompt": p})["answer"]) for p in PROMPTS]
    for prompt in PROMPTS:
        try:
            outcomes.append((await app.ainvoke({"prompt": prompt}))["answer"])
        except GraphRouteError as error:
            outcomes.append(type(error).__name__)
    outcomes += [attempt(lambda p=p: list(app.stream({"prompt": p}))) for p in PROMPTS]
    for _ in range(5):
        app.invoke({"prompt": CONTROL})

    assert setting.leaked() == []
    assert setting.reached_local() == list(CANARIES)
    assert "local answer" in outcomes and "cloud answer" not in outcomes
    assert setting.control_reached_cloud()  # the bandit's favourite really is the cloud


def test_routed_chat_model_keeps_every_canary_local(setting: Setting, tmp_path: Path) -> None:
    llm = RoutedChatModel(pool=setting.pool, router=setting.router, traces=tmp_path / "t.sqlite")

    outcomes = [attempt(lambda p=p: llm.invoke(p).content) for p in PROMPTS]
    outcomes += [attempt(lambda p=p: "".join(str(chunk.content) for chunk in llm.stream(p))) for p in PROMPTS]
    replies = llm.batch(PROMPTS, return_exceptions=True)
    outcomes += [type(reply).__name__ if isinstance(reply, Exception) else str(reply.content) for reply in replies]
    for _ in range(5):
        llm.invoke(CONTROL)

    assert setting.leaked() == []
    assert setting.reached_local() == list(CANARIES)
    assert "local answer" in outcomes and "cloud answer" not in outcomes
    assert setting.control_reached_cloud()


def test_the_server_keeps_every_canary_local(setting: Setting) -> None:
    statuses: list[int] = []
    app = create_app(setting.pool, traces=False, router=setting.router)
    with serving(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        for prompt in PROMPTS:
            for stream in (False, True):
                body = {"model": "router-default", "messages": [{"role": "user", "content": prompt}]}
                response = client.post("/chat/completions", json={**body, "stream": stream})
                statuses.append(response.status_code)
                assert "cloud answer" not in response.text
        for _ in range(5):
            client.post(
                "/chat/completions",
                json={"model": "router-default", "messages": [{"role": "user", "content": CONTROL}]},
            )

    assert setting.leaked() == []
    assert setting.reached_local() == list(CANARIES)
    assert set(statuses) <= {200, 502} and 200 in statuses  # a failed local call is an error, not a leak
    assert setting.control_reached_cloud()


# -- routers without a rules pillar ---------------------------------------------------------------
# Node pins, the default router and the server's pass-through never run the rules pillar; the
# privacy guard in dispatch holds for them too: the request moves to a local model.


@pytest.fixture
def cloud_first(setting: Setting) -> ModelPool:
    """The same stand-ins, with every call routed to the cloud model unless it is private."""
    entries = {name: setting.pool[name].model_dump(exclude_defaults=True) for name in setting.pool.names}
    return ModelPool.from_dict({"routing": {"default": "cloud"}, "models": entries})


def test_pinned_and_default_routes_to_the_cloud_keep_canaries_local(
    setting: Setting, cloud_first: ModelPool, tmp_path: Path
) -> None:
    app = optimize(question_graph(), pool=cloud_first, routes={"answer": "cloud"}, traces=tmp_path / "t.sqlite")
    llm = RoutedChatModel(pool=cloud_first, traces=tmp_path / "t.sqlite")

    outcomes = [attempt(lambda p=p: app.invoke({"prompt": p})["answer"]) for p in PROMPTS]
    outcomes += [attempt(lambda p=p: llm.invoke(p).content) for p in PROMPTS]
    app.invoke({"prompt": CONTROL})

    assert setting.leaked() == []
    assert setting.reached_local() == list(CANARIES)
    assert "local answer" in outcomes and "cloud answer" not in outcomes
    assert setting.control_reached_cloud()
    moved = [call for call in app.store.calls() if call.model == "local"]
    assert moved and all("private" in call.reason and "cloud → local" in call.reason for call in moved)


def test_a_request_naming_a_cloud_model_on_the_server_stays_local_if_private(
    setting: Setting, cloud_first: ModelPool
) -> None:
    app = create_app(cloud_first, traces=False)
    with serving(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        answers = []
        for prompt in PROMPTS:
            for model in ("cloud", "router-default"):
                body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
                response = client.post("/chat/completions", json=body)
                if response.status_code == 200:
                    answers.append(response.json()["model"])
        client.post("/chat/completions", json={"model": "cloud", "messages": [{"role": "user", "content": CONTROL}]})

    assert setting.leaked() == []
    assert answers and set(answers) == {"local"}  # the answer names the model that really served it
    assert setting.control_reached_cloud()


def test_a_pool_without_any_local_model_refuses_private_requests(tmp_path: Path) -> None:
    with ScriptedProvider(lambda request: Reply(content="cloud answer")) as cloud:
        pool = ModelPool.from_dict({"models": {"cloud": cloud.pool_entry(input_price=2.5, output_price=10.0)}})
        llm = RoutedChatModel(pool=pool, traces=tmp_path / "t.sqlite")

        with pytest.raises(GraphRouteError, match=r"must stay local .*\[rules\.privacy\]"):
            llm.invoke(PROMPTS[0])
        assert llm.invoke(CONTROL).content == "cloud answer"
        assert all(CANARIES["email"] not in json.dumps(request.body) for request in cloud.requests)
