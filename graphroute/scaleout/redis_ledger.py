"""A budget's spend counted in Redis, so N workers together respect one rolling budget.

Every charge is one ``INCRBYFLOAT`` (atomic on the server); finishing a run adds its remaining
spend and counts the run in one ``MULTI`` transaction. The pacer's guard reads the shared
total before each call, so the workers together overshoot the budget by at most one call each
(the calls that passed the guard at the same moment).

Keys: ``<prefix>budget:<name>:spent``, ``…:runs``, ``…:started`` (the period's start, set once).
"""

from __future__ import annotations

from graphroute.planning.pacing import SpendLedger
from graphroute.scaleout.urls import redact, redis_client, split_prefix


class RedisSpendLedger(SpendLedger):
    """``SpendLedger`` on Redis; ``name`` tells budgets of one app apart.

    Usage::

        ledger = RedisSpendLedger("redis://state:6379/0?prefix=my-app", name="monthly")
        pacer = BudgetPacer(plan.lam, total_usd=500.0, period_s=30 * 86400, ledger=ledger)
    """

    def __init__(self, url: str, *, name: str = "default", prefix: str | None = None) -> None:
        plain, self.prefix = split_prefix(url, prefix)
        self.url = redact(plain)  # the client holds the credentials; nothing else keeps them
        self.name = name
        self._client = redis_client(plain)
        base = f"{self.prefix}budget:{name}:"
        self._spent, self._runs, self._started = base + "spent", base + "runs", base + "started"

    def start(self, now: float) -> float:
        self._client.set(self._started, repr(float(now)), nx=True)
        return float(self._client.get(self._started))

    def spent(self) -> float:
        value = self._client.get(self._spent)
        return float(value) if value is not None else 0.0

    def runs(self) -> int:
        value = self._client.get(self._runs)
        return int(value) if value is not None else 0

    def charge(self, usd: float) -> float:
        return float(self._client.incrbyfloat(self._spent, float(usd)))

    def finish_run(self, usd: float) -> tuple[float, int]:
        pipe = self._client.pipeline(transaction=True)
        pipe.incrbyfloat(self._spent, float(usd))
        pipe.incr(self._runs)
        spent, runs = pipe.execute()
        return float(spent), int(runs)

    def reset(self) -> None:
        """Start the budget afresh (a new period): forget spend, runs and the start time."""
        self._client.delete(self._spent, self._runs, self._started)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisSpendLedger({self.url!r}, name={self.name!r}, prefix={self.prefix!r})"
