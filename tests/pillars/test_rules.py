"""The rules pillar on real prompts: privacy constraints, difficulty hints, per-node overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from graphroute.errors import ConfigError
from graphroute.pillars.base import RouteRequest
from graphroute.pillars.rules import PiiDetector, RulesConfig, RulesPillar, load_rules_config


def ask(text: str, *, node: str | None = None, **metadata: object) -> RouteRequest:
    return RouteRequest([HumanMessage(text)], node=node, metadata=metadata)


@pytest.fixture(scope="module")
def rules() -> RulesPillar:
    return RulesPillar()


@pytest.mark.parametrize(
    "prompt",
    [
        "Please draft a reply to jane.doe@acme-corp.co.uk about the invoice.",
        "Call the customer back on +44 20 7946 0958 tomorrow morning.",
        "US office: (415) 555-0132, ask for Sam.",
        "Charge card 4111 1111 1111 1111 for the renewal.",
        "Wire it to IBAN GB82 WEST 1234 5698 7654 32 by Friday.",
        "My account number: 0012345678 has a pending charge.",
        "Her SSN is 078-05-1120, file the form.",
    ],
)
def test_personal_data_forces_a_local_model(rules: RulesPillar, prompt: str) -> None:
    assert rules.score(ask(prompt)).local_only


def test_an_email_address_is_local_only_whatever_the_other_rules_say() -> None:
    # A hard, long maths-and-code prompt that every other rule would send to the strongest model.
    hard = "Prove step by step that the integral of x^2 is x^3/3.\n```python\ndef f(x):\n    return x**2\n```\n"
    pillar = RulesPillar(RulesConfig(nodes={"writer": {"difficulty": 1.0}}))
    signal = pillar.score(ask(hard * 50 + "Send the result to bob@example.org", node="writer"))
    assert signal.local_only
    assert signal.difficulty == 1.0
    assert "e-mail address" in signal.reason


def test_personal_data_in_any_message_counts() -> None:
    request = RouteRequest(
        [SystemMessage("Customer record: alice@example.net"), AIMessage("Noted."), HumanMessage("Summarise the case")]
    )
    assert RulesPillar().score(request).local_only


@pytest.mark.parametrize(
    "prompt",
    [
        "What is the capital of France, and how many people live there?",
        "Janet's ducks lay 16 eggs per day and she sells each for $2. In 2023 she sold 5840 eggs.",
        "Order 4111 1111 1111 1112 shipped on 2024-03-05.",  # fails the Luhn check: not a card
        "Compute 1234567 + 7654321 and explain.",
    ],
)
def test_ordinary_numbers_are_not_personal_data(rules: RulesPillar, prompt: str) -> None:
    assert not rules.score(ask(prompt)).local_only


def test_user_patterns_and_allow_list() -> None:
    pillar = RulesPillar(RulesConfig(privacy={"patterns": [r"\bPRJ-\d{4}\b"], "allow": [r"@example\.com$"]}))
    assert pillar.score(ask("Status of PRJ-1234?")).local_only
    assert not pillar.score(ask("Write to support@example.com for help.")).local_only
    assert pillar.score(ask("Write to support@elsewhere.com for help.")).local_only


def test_privacy_can_be_narrowed_or_disabled() -> None:
    emails_only = RulesPillar(RulesConfig(privacy={"detect": ["email"]}))
    assert not emails_only.score(ask("Call +44 20 7946 0958")).local_only
    off = RulesPillar(RulesConfig(privacy={"enabled": False}))
    assert not off.score(ask("mail me: a@b.org")).local_only


def test_node_and_call_level_local_only() -> None:
    pillar = RulesPillar(RulesConfig(nodes={"triage": {"local_only": True}}))
    assert pillar.score(ask("hello", node="triage")).local_only
    assert pillar.score(ask("hello", node="triage:classify")).local_only  # inner node of a subgraph
    assert not pillar.score(ask("hello", node="answer")).local_only
    assert pillar.score(ask("hello", node="answer", local_only=True)).local_only


def test_difficulty_hints(rules: RulesPillar) -> None:
    proof = rules.score(ask("Prove that the square root of 2 is irrational."))
    code = rules.score(ask("Why does this fail?\n```\nfor i in range(3) print(i)\n```"))
    maths = rules.score(ask("Solve for x: x^2 - 5x + 6 = 0 and check both roots."))
    easy = rules.score(ask("Translate 'good morning, how was the trip to the coast?' into German."))
    short = rules.score(ask("Hi there!"))
    unsure = rules.score(ask("What is the capital of France, and how many people live there?"))
    assert proof.difficulty is not None and proof.difficulty >= 0.7
    assert code.difficulty is not None and code.difficulty >= 0.7 and "code" in code.reason
    assert maths.difficulty is not None and maths.difficulty >= 0.7 and "maths" in maths.reason
    assert easy.difficulty is not None and easy.difficulty <= 0.3
    assert short.difficulty is not None and short.difficulty <= 0.3
    assert unsure.difficulty is None and unsure.confidence == 0.0  # no rule fired: ask the next pillar


def test_long_prompts_are_hard() -> None:
    pillar = RulesPillar(RulesConfig(long_tokens=100))
    signal = pillar.score(ask("tell me about the weather in spring " * 20))
    assert signal.difficulty == pillar.config.hard_difficulty and "tokens" in signal.reason


def test_per_node_overrides() -> None:
    config = RulesConfig(
        hard_keywords=["architecture"],
        nodes={"summarize": {"difficulty": 0.1}, "review": {"hard_keywords": ["security"], "long_tokens": 10}},
    )
    pillar = RulesPillar(config)
    assert pillar.score(ask("Prove the architecture is sound", node="summarize")).difficulty == 0.1
    review = pillar.score(ask("Check the security of this change", node="review"))
    assert review.difficulty == config.hard_difficulty and "security" in review.reason
    assert pillar.score(ask("Check the security of this change, please, in some detail")).difficulty is None


def test_luhn_and_mod97_reject_lookalikes() -> None:
    detector = PiiDetector(("card", "iban"))
    assert detector.first("card 5555 5555 5555 4444") == "payment card number"
    assert detector.first("card 5555 5555 5555 4445") is None
    assert detector.first("IBAN DE89 3704 0044 0532 0130 00") == "IBAN"
    assert detector.first("IBAN DE89 3704 0044 0532 0130 01") is None


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hard_keyword"):
        RulesConfig.model_validate({"hard_keyword": ["x"]})
    with pytest.raises(ValueError, match="invalid regular expression"):
        RulesConfig(hard_patterns=["(unclosed"])
    with pytest.raises(ValueError, match=r"nodes\.review"):
        RulesConfig(nodes={"review": {"dificulty": 0.5}})
    path = tmp_path / "graphroute.toml"
    path.write_text('[rules]\nlong_tokens = 50\n[rules.privacy]\npattern = ["x"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"privacy\.pattern"):
        load_rules_config(path)


def test_rules_load_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "graphroute.toml"
    path.write_text(
        '[rules]\nlong_tokens = 50\n[rules.privacy]\npatterns = ["ACME-\\\\d+"]\n'
        "[rules.nodes.triage]\nlocal_only = true\n",
        encoding="utf-8",
    )
    pillar = RulesPillar(load_rules_config(path))
    assert pillar.score(ask("ticket ACME-42")).local_only
    assert pillar.score(ask("hello", node="triage")).local_only
    assert pillar.config.long_tokens == 50


async def test_async_twin_gives_the_same_signal(rules: RulesPillar) -> None:
    request = ask("Email me at someone@example.org")
    assert await rules.ascore(request) == rules.score(request)
