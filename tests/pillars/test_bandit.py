"""The bandit pillar: learns the best arm per context, pays for errors, heals, and remembers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from graphroute import ConfigError
from graphroute.pillars.bandit import BanditPillar, Decay, Outcome, SQLiteBanditStore, looks_like_refusal

REWARDS = {"cheap": 0.9, "mid": 0.6, "dear": 0.3}


def play(bandit: BanditPillar, calls: int, rewards: dict[str, float], node: str = "plan") -> Counter[str]:
    picks: Counter[str] = Counter()
    for _ in range(calls):
        signal = bandit.choose(list(rewards), node=node, difficulty=0.5)
        assert signal.model is not None
        picks[signal.model] += 1
        bandit.update(signal, rewards[signal.model])
    return picks


@pytest.mark.parametrize("policy", ["epsilon", "thompson"])
def test_both_policies_settle_on_the_best_arm(policy: str) -> None:
    bandit = BanditPillar(policy=policy, store=":memory:", seed=3)  # type: ignore[arg-type]

    picks = play(bandit, 300, REWARDS)

    assert picks.most_common(1)[0][0] == "cheap"
    assert picks["cheap"] > 0.6 * 300
    assert picks["dear"] < picks["cheap"]  # still explored, never preferred


def test_contexts_are_learned_separately_per_node_and_difficulty_bucket() -> None:
    bandit = BanditPillar(store=":memory:", seed=0)
    play(bandit, 100, {"cheap": -0.5, "mid": 0.8}, node="plan")
    play(bandit, 100, {"cheap": 0.8, "mid": -0.5}, node="write")

    assert bandit.context("plan", 0.5) == "plan|medium"
    assert bandit.context(None, 0.95) == "*|hard"
    assert bandit.context("plan", None) == "plan|any"
    assert sorted(bandit.store.contexts()) == ["plan|medium", "write|medium"]
    best = {view.model: view.mean_reward for view in bandit.arms("plan|medium", ["cheap", "mid"])}
    assert best["mid"] > best["cheap"]
    best = {view.model: view.mean_reward for view in bandit.arms("write|medium", ["cheap", "mid"])}
    assert best["cheap"] > best["mid"]


def test_rewards_charge_cost_and_punish_errors_timeouts_and_refusals() -> None:
    bandit = BanditPillar(store=":memory:", cost_weight=100.0)

    assert bandit.reward(Outcome()) == 1.0
    assert bandit.reward(Outcome(cost_usd=0.002)) == pytest.approx(0.8)
    assert bandit.reward(Outcome(quality=0.5, cost_usd=0.001)) == pytest.approx(0.4)
    assert bandit.reward(Outcome(error="TimeoutError")) < 0
    assert bandit.reward(Outcome.from_reply(None, error=ConnectionError("reset"))) < 0
    assert bandit.reward(Outcome.from_reply("I'm sorry, but I can't help with that.")) < 0
    assert bandit.reward(Outcome.from_reply("Paris is the capital of France.")) == 1.0
    assert bandit.reward(Outcome(cost_usd=1.0)) == -1.0  # clipped to [-1, 1]


def test_refusals_are_recognised_by_how_the_reply_opens() -> None:
    assert looks_like_refusal("I cannot assist with that request.")
    assert looks_like_refusal("Sorry, I can't help with this.")
    assert not looks_like_refusal("I can help with that: here is the plan.")
    assert not looks_like_refusal("The function cannot return None because ...")


def test_a_provider_that_errors_rests_then_gets_one_probe_and_heals() -> None:
    bandit = BanditPillar(store=":memory:", seed=1, decay=Decay(backoff=2, max_backoff=8))
    play(bandit, 40, {"cheap": 1.0, "mid": 0.5})
    context = bandit.context("plan", 0.5)

    for _ in range(3):  # an outage: three errors in a row on the best arm
        bandit.update(context, -1.0, model="cheap", error=True)
    resting = {view.model: view for view in bandit.arms(context, ["cheap", "mid"])}
    assert resting["cheap"].streak == 3 and resting["cheap"].resting
    assert bandit.choose(["cheap", "mid"], node="plan", difficulty=0.5).model == "mid"

    for _ in range(8):  # its rest passes while the other arm serves
        bandit.update(context, 0.5, model="mid")
    probe = bandit.choose(["cheap", "mid"], node="plan", difficulty=0.5)
    assert probe.model == "cheap" and "probing" in probe.reason

    bandit.update(probe, 1.0)  # the probe succeeds: the outage is forgotten
    healed = {view.model: view for view in bandit.arms(context, ["cheap", "mid"])}
    assert healed["cheap"].streak == 0 and healed["cheap"].mean_reward == 1.0


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "bandit.sqlite"
    first = BanditPillar(store=path, seed=0)
    play(first, 60, {"cheap": -0.2, "mid": 0.7})
    first.store.close()

    again = BanditPillar(store=SQLiteBanditStore(path), seed=0, epsilon=0.1)
    views = {view.model: view for view in again.arms("plan|medium", ["cheap", "mid"])}

    assert views["mid"].plays + views["cheap"].plays == 60
    assert views["mid"].mean_reward > views["cheap"].mean_reward
    assert Counter(again.choose(["cheap", "mid"], node="plan", difficulty=0.5).model for _ in range(50))["mid"] > 40


def test_update_accepts_what_choose_returned_or_a_context_and_model() -> None:
    bandit = BanditPillar(store=":memory:")
    signal = bandit.choose(["a", "b"], node="n", difficulty=0.1)
    other = "b" if signal.model == "a" else "a"  # the choice may explore either arm

    bandit.update(signal, 1.0)
    bandit.update("n|easy", -1.0, model=other)

    plays = {view.model: view.plays for view in bandit.arms("n|easy", ["a", "b"])}
    assert plays == {"a": 1, "b": 1}
    with pytest.raises(ConfigError, match="no bandit arm"):
        bandit.update(object(), 1.0)


def test_bad_settings_are_refused_with_the_fix_named() -> None:
    with pytest.raises(ConfigError, match=r"epsilon must be in \[0.1, 1\]"):
        BanditPillar(epsilon=0.01, store=":memory:")
    with pytest.raises(ConfigError, match="unknown bandit policy 'ucb'"):
        BanditPillar(policy="ucb", store=":memory:")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs candidate models"):
        from graphroute import RouteRequest

        BanditPillar(store=":memory:").score(RouteRequest(messages=[]))
