"""How a run's end-to-end success depends on its calls: the planner's value model.

A workflow is a product of independent *parts*; the run succeeds when every part does:

- ``Step(node, calls, criticality)`` — a node whose wrong output sinks the run with
  probability ``criticality`` (1 for a step of a chain; less for a side branch). A node called
  ``calls`` times per run contributes ``(1 − criticality·(1 − p))`` per call.
- ``Quorum(node, width, need)`` — ``width`` parallel copies of a node (a ``Send`` fan-out), of
  which at least ``need`` must succeed.
- ``Retry(solver, critic, attempts)`` — a solver checked by a critic that catches a wrong answer
  when the critic itself is right, and sends it back; at most ``attempts`` solver calls.

From that model the planner reads, for the call about to be made, two numbers given what the
run already knows (``RunState``: the estimated success of each earlier call, hence the
attempt number and what a re-visit says about the critic's verdict):

- ``value``: how much the run's success probability rises if this call succeeds rather than
  fails (``∂P(run ok)/∂p`` — exact, since success is multilinear in the calls' successes);
- ``saving``: how much expected *future* spend a success avoids (a right first answer makes
  the retry unnecessary).

A per-call router implicitly uses value 1 and saving 0 for every call; everything the plan
gains over it comes from these two numbers differing between calls and between runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from math import prod
from typing import Any, ClassVar

from graphroute.planning.failures import RunFailure

Slot = tuple[str, int]
"""A node and an attempt number (0 for nodes outside a retry loop)."""


@dataclass
class RunState:
    """What one run knows so far: per node, the estimated success of each call already made.

    ``evidence`` keeps each call's per-model estimates, from which the plan infers what kind
    of run this is (see ``context.py``); ``spent_usd`` is what the run has cost so far.
    """

    calls: dict[str, list[float]] = field(default_factory=dict)
    spent_usd: float = 0.0
    evidence: list[Any] = field(default_factory=list)
    models: dict[str, list[int]] = field(default_factory=dict)
    failures: list[RunFailure] = field(default_factory=list)

    def record(
        self, node: str, success: float, cost_usd: float = 0.0, evidence: Any = None, model: int | None = None
    ) -> None:
        """One call made: its estimated success, cost, evidence and (pool index) model."""
        self.calls.setdefault(node, []).append(float(success))
        self.spent_usd += cost_usd
        if evidence is not None:
            self.evidence.append(evidence)
        if model is not None:
            self.models.setdefault(node, []).append(model)

    def made(self, node: str) -> list[float]:
        return self.calls.get(node, [])

    def fail(self, failure: RunFailure) -> None:
        """A call of the run failed (``failures.py``); a failure already known is kept once."""
        if failure not in self.failures:
            self.failures.append(failure)


EMPTY = RunState()


@dataclass(frozen=True)
class Expectation:
    """What the plan expects of a slot it has not reached: mean success and mean cost per call."""

    success: float
    cost: float


Expect = Mapping[Slot, Expectation]


class Part(ABC):
    """One factor of the run's success probability.

    ``reveals_results``: the part's path tells the run how some of its calls went (a critic's
    rejection); the plan then steers by ``Carryover``, measured against the estimates as given,
    and leaves the part's calls out of the context recalibration (``Plan.decide``).
    """

    reveals_results: ClassVar[bool] = False

    @abstractmethod
    def nodes(self) -> list[str]: ...

    @abstractmethod
    def slots(self) -> list[Slot]:
        """Every slot the part can call, in call order."""

    @abstractmethod
    def slot_for(self, node: str, state: RunState) -> Slot:
        """The slot the next call of ``node`` fills."""

    @abstractmethod
    def success(self, expect: Expect, state: RunState) -> float:
        """P(part ok) given the calls made and the plan's expectations for the rest."""

    @abstractmethod
    def cost(self, expect: Expect, state: RunState) -> float:
        """Expected spend of the calls still to come."""

    @abstractmethod
    def marginal(self, node: str, expect: Expect, state: RunState) -> tuple[float, float]:
        """``(value, saving)`` of the next call of ``node`` succeeding, within this part."""

    @abstractmethod
    def reach(self, expect: Expect) -> dict[Slot, float]:
        """Expected number of calls per run of each slot (before the run starts)."""

    def slot_marginal(self, slot: Slot, expect: Expect) -> tuple[float, float]:
        """``(value, saving)`` of a call in ``slot`` before the run starts (given it is reached)."""
        return self.marginal(slot[0], expect, EMPTY)

    def evidence(self, state: RunState, expect: Expect, upcoming: str | None = None) -> float:
        """How likely the path the run took (up to the call about to be made on ``upcoming``) is
        under ``expect`` — for telling kinds of runs apart."""
        return 1.0

    def verdicts(self, state: RunState, upcoming: str | None = None) -> list[tuple[str, int, bool]]:
        """Calls whose result the run's path reveals, counting the call about to be made on
        ``upcoming``: ``(node, call number, right)``."""
        return []


@dataclass(frozen=True)
class Step(Part):
    node: str
    calls: float = 1.0
    criticality: float = 1.0

    def nodes(self) -> list[str]:
        return [self.node]

    def slots(self) -> list[Slot]:
        return [(self.node, 0)]

    def slot_for(self, node: str, state: RunState) -> Slot:
        return (self.node, 0)

    def _factor(self, p: float) -> float:
        return 1.0 - self.criticality * (1.0 - p)

    def success(self, expect: Expect, state: RunState) -> float:
        made = state.made(self.node)
        pending = max(self.calls - len(made), 0.0)
        return prod(self._factor(p) for p in made) * self._factor(expect[(self.node, 0)].success) ** pending

    def cost(self, expect: Expect, state: RunState) -> float:
        return max(self.calls - len(state.made(self.node)), 0.0) * expect[(self.node, 0)].cost

    def marginal(self, node: str, expect: Expect, state: RunState) -> tuple[float, float]:
        made = state.made(self.node)
        later = max(self.calls - len(made) - 1, 0.0)
        rest = prod(self._factor(p) for p in made) * self._factor(expect[(self.node, 0)].success) ** later
        return self.criticality * rest, 0.0

    def reach(self, expect: Expect) -> dict[Slot, float]:
        return {(self.node, 0): self.calls}


def _at_least(probabilities: Sequence[float], need: int) -> float:
    """P(at least ``need`` of independent events happen) (Poisson-binomial, by DP)."""
    if need <= 0:
        return 1.0
    counts = [1.0] + [0.0] * len(probabilities)
    for p in probabilities:
        for k in range(len(counts) - 1, 0, -1):
            counts[k] = counts[k] * (1.0 - p) + counts[k - 1] * p
        counts[0] *= 1.0 - p
    return sum(counts[need:])


@dataclass(frozen=True)
class Quorum(Part):
    node: str
    width: int
    need: int

    def __post_init__(self) -> None:
        if not 0 <= self.need <= self.width:
            raise ValueError(f"Quorum({self.node!r}): need {self.need} must be within 0..{self.width}")

    def nodes(self) -> list[str]:
        return [self.node]

    def slots(self) -> list[Slot]:
        return [(self.node, 0)]

    def slot_for(self, node: str, state: RunState) -> Slot:
        return (self.node, 0)

    def _all(self, expect: Expect, state: RunState, extra: int = 0) -> list[float]:
        made = state.made(self.node)[: self.width]
        pending = max(self.width - len(made) - extra, 0)
        return [*made, *[expect[(self.node, 0)].success] * pending]

    def success(self, expect: Expect, state: RunState) -> float:
        return _at_least(self._all(expect, state), self.need)

    def cost(self, expect: Expect, state: RunState) -> float:
        return max(self.width - len(state.made(self.node)), 0) * expect[(self.node, 0)].cost

    def marginal(self, node: str, expect: Expect, state: RunState) -> tuple[float, float]:
        # The call is pivotal when exactly need − 1 of the other copies succeed.
        others = self._all(expect, state, extra=1)
        return _at_least(others, self.need - 1) - _at_least(others, self.need), 0.0

    def reach(self, expect: Expect) -> dict[Slot, float]:
        return {(self.node, 0): float(self.width)}


@dataclass(frozen=True)
class Retry(Part):
    reveals_results: ClassVar[bool] = True  # a critic's rejection tells the run its answer failed
    solver: str
    critic: str
    attempts: int = 3

    def nodes(self) -> list[str]:
        return [self.solver, self.critic]

    def slots(self) -> list[Slot]:
        return [slot for a in range(1, self.attempts + 1) for slot in ((self.solver, a), (self.critic, a))]

    def slot_for(self, node: str, state: RunState) -> Slot:
        solved = len(state.made(self.solver))
        attempt = solved + 1 if node == self.solver else max(solved, 1)
        return (node, min(attempt, self.attempts))

    def _tail(self, expect: Expect, attempt: int) -> tuple[float, float]:
        """(P(success), expected spend) from the start of ``attempt`` on, under the plan."""
        success, spend = 0.0, 0.0
        for a in range(self.attempts, attempt - 1, -1):
            p, catch = expect[(self.solver, a)].success, expect[(self.critic, a)].success
            retry = (1.0 - p) * catch if a < self.attempts else 0.0
            success = p + retry * success
            spend = expect[(self.solver, a)].cost + expect[(self.critic, a)].cost + retry * spend
        return success, spend

    def _position(self, state: RunState) -> tuple[int, float | None, bool]:
        """(attempt, estimated success of its answer if given, whether the critic has judged it)."""
        solved, judged = state.made(self.solver), state.made(self.critic)
        if not solved:
            return 1, None, False
        return len(solved), solved[-1], len(judged) >= len(solved)

    def success(self, expect: Expect, state: RunState) -> float:
        attempt, answer, judged = self._position(state)
        if answer is None:
            return self._tail(expect, 1)[0]
        catch = state.made(self.critic)[-1] if judged else expect[(self.critic, attempt)].success
        later = self._tail(expect, attempt + 1)[0] if attempt < self.attempts else 0.0
        return answer + (1.0 - answer) * catch * later

    def cost(self, expect: Expect, state: RunState) -> float:
        attempt, answer, judged = self._position(state)
        if answer is None:
            return self._tail(expect, 1)[1]
        catch = state.made(self.critic)[-1] if judged else expect[(self.critic, attempt)].success
        critic = 0.0 if judged else expect[(self.critic, attempt)].cost
        later = self._tail(expect, attempt + 1)[1] if attempt < self.attempts else 0.0
        return critic + (1.0 - answer) * catch * later

    def marginal(self, node: str, expect: Expect, state: RunState) -> tuple[float, float]:
        _, attempt = self.slot_for(node, state)
        later_success, later_spend = self._tail(expect, attempt + 1) if attempt < self.attempts else (0.0, 0.0)
        if node == self.solver:
            catch = expect[(self.critic, attempt)].success
            return 1.0 - catch * later_success, catch * later_spend
        made = state.made(self.solver)
        wrong = 1.0 - (made[-1] if made else expect[(self.solver, attempt)].success)
        # A catch buys another attempt: worth its success, and it costs its spend.
        return wrong * later_success, -wrong * later_spend

    def evidence(self, state: RunState, expect: Expect, upcoming: str | None = None) -> float:
        # Each re-visit of the solver means the critic rejected the previous answer: the answer
        # was wrong and the critic caught it — likelier where answers fail more and critics catch
        # more. Per-question estimates often miss how much harder one kind of task is than
        # another; the plan's per-context expectations (from known outcomes) do not.
        rejections = len(self.verdicts(state, upcoming)) // 2
        return prod(
            (1.0 - expect[(self.solver, a)].success) * expect[(self.critic, a)].success
            for a in range(1, min(rejections, self.attempts) + 1)
        )

    def verdicts(self, state: RunState, upcoming: str | None = None) -> list[tuple[str, int, bool]]:
        # The solver is only called again after a rejection, and a rejection happens only when
        # the answer was wrong and the critic, right on its own question, caught it.
        solved, judged = len(state.made(self.solver)), len(state.made(self.critic))
        rejected = max(solved - 1, 0) + int(upcoming == self.solver and solved > 0 and judged >= solved)
        out = []
        for attempt in range(rejected):
            out += [(self.solver, attempt, False), (self.critic, attempt, True)]
        return out

    def slot_marginal(self, slot: Slot, expect: Expect) -> tuple[float, float]:
        node, attempt = slot
        answers = [expect[(self.solver, a)].success for a in range(1, attempt + 1)]
        judged = [expect[(self.critic, a)].success for a in range(1, attempt)]
        state = RunState({self.solver: answers if node == self.critic else answers[:-1], self.critic: judged})
        return self.marginal(node, expect, state)

    def reach(self, expect: Expect) -> dict[Slot, float]:
        reached, out = 1.0, {}
        for a in range(1, self.attempts + 1):
            out[(self.solver, a)] = out[(self.critic, a)] = reached
            reached *= (1.0 - expect[(self.solver, a)].success) * expect[(self.critic, a)].success
        return out


@dataclass(frozen=True)
class Workflow:
    """The run succeeds when every part succeeds; parts are independent."""

    parts: tuple[Part, ...]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for part in self.parts:
            for node in part.nodes():
                if node in seen:
                    raise ValueError(f"node {node!r} appears in two parts of the workflow")
                seen.add(node)

    @classmethod
    def chain(cls, *nodes: str) -> Workflow:
        """Every node must succeed (a pipeline)."""
        return cls(tuple(Step(node) for node in nodes))

    def __iter__(self) -> Iterator[Part]:
        return iter(self.parts)

    def part(self, node: str) -> Part | None:
        for part in self.parts:
            if node in part.nodes():
                return part
        return None

    def nodes(self) -> list[str]:
        return [node for part in self.parts for node in part.nodes()]

    def slots(self) -> list[Slot]:
        return [slot for part in self.parts for slot in part.slots()]

    def success(self, expect: Expect, state: RunState = EMPTY) -> float:
        return prod(part.success(expect, state) for part in self.parts)

    def cost(self, expect: Expect, state: RunState = EMPTY) -> float:
        return sum(part.cost(expect, state) for part in self.parts)

    def reach(self, expect: Expect) -> dict[Slot, float]:
        out: dict[Slot, float] = {}
        for part in self.parts:
            out.update(part.reach(expect))
        return out

    def slot_marginal(self, slot: Slot, expect: Expect) -> tuple[float, float]:
        """``(value, saving)`` of a call in ``slot`` as the plan sees it before the run starts."""
        part = self.part(slot[0])
        if part is None:
            return 1.0, 0.0
        value, saving = part.slot_marginal(slot, expect)
        others = prod(other.success(expect, EMPTY) for other in self.parts if other is not part)
        return value * others, saving

    def evidence(self, state: RunState, expect: Expect, upcoming: str | None = None) -> float:
        """How likely the run's path so far is under ``expect`` (verdicts seen as re-visits)."""
        return prod(part.evidence(state, expect, upcoming) for part in self.parts)

    def verdicts(self, state: RunState, upcoming: str | None = None) -> list[tuple[str, int, bool]]:
        """Every call whose result the run's path has revealed (e.g. an answer a critic rejected),
        the call about to be made on ``upcoming`` included (calling the solver again means a rejection)."""
        return [verdict for part in self.parts for verdict in part.verdicts(state, upcoming)]

    def marginal(self, node: str, expect: Expect, state: RunState = EMPTY) -> tuple[float, float]:
        """``(value, saving)`` of the next call of ``node``; ``(1, 0)`` for a node not modelled."""
        part = self.part(node)
        if part is None:
            return 1.0, 0.0
        value, saving = part.marginal(node, expect, state)
        others = prod(other.success(expect, state) for other in self.parts if other is not part)
        return value * others, saving
