"""Bandit arm state in Redis: every worker learns from every other worker's calls.

Why a Lua script: an update is a read-modify-write (decay the arm's evidence to the new step,
add the reward, extend or end its rest). Run inside Redis it is atomic, so observations made by
any number of processes all count — exactly once — without WATCH/MULTI retries under load.
The script is ``ArmState.add`` written again; the conformance suite checks both agree.

Layout: one hash per context, ``<prefix>bandit:ctx:<context>``, holding the context's step
and one field per arm; the set ``<prefix>bandit:contexts`` lists contexts.
"""

from __future__ import annotations

from graphroute.pillars.bandit import ArmState, BanditStore, Decay, Evidence
from graphroute.scaleout.urls import redact, redis_client, split_prefix

_STEP = "\x00step"

# KEYS: context hash, contexts set. ARGV: context, model, success, failure, error (0/1),
# discount, backoff, max_backoff, heal_after. Floats travel as %.17g text: exact round trips.
_UPDATE = """
local step = redis.call('HINCRBY', KEYS[1], ARGV[10], 1)
local field = 'arm:' .. ARGV[2]
local s, f, plays, at, streak, rest = 0, 0, 0, 0, 0, 0
local raw = redis.call('HGET', KEYS[1], field)
if raw then
  local v = {}
  for part in string.gmatch(raw, '[^,]+') do v[#v + 1] = tonumber(part) end
  s, f, plays, at, streak, rest = v[1], v[2], v[3], v[4], v[5], v[6]
end
local discount = tonumber(ARGV[6])
local factor = discount ^ math.max(0, step - at)
s, f = s * factor, f * factor
if ARGV[5] == '1' then
  streak = streak + 1
  local pause = math.min(tonumber(ARGV[8]), tonumber(ARGV[7]) * 2 ^ (streak - 1))
  f = f + tonumber(ARGV[4])
  rest = step + pause
else
  if streak >= tonumber(ARGV[9]) then s, f = 0, 0 end
  s = s + tonumber(ARGV[3])
  f = f + tonumber(ARGV[4])
  streak, rest = 0, 0
end
plays = plays + 1
redis.call('HSET', KEYS[1], field, string.format('%.17g,%.17g,%d,%d,%d,%d', s, f, plays, step, streak, rest))
redis.call('SADD', KEYS[2], ARGV[1])
return step
"""


def _float(value: float) -> str:
    return repr(float(value))


class RedisBanditStore(BanditStore):
    """``BanditStore`` on Redis with atomic updates (a server-side script).

    Usage::

        bandit = BanditPillar(store=RedisBanditStore("redis://state:6379/0?prefix=my-app"))
    """

    def __init__(self, url: str, *, prefix: str | None = None) -> None:
        plain, self.prefix = split_prefix(url, prefix)
        self.url = redact(plain)  # the client holds the credentials; nothing else keeps them
        self._client = redis_client(plain)
        self._update = self._client.register_script(_UPDATE)
        self._contexts = f"{self.prefix}bandit:contexts"

    def _hash(self, context: str) -> str:
        return f"{self.prefix}bandit:ctx:{context}"

    def load(self, context: str) -> tuple[int, dict[str, ArmState]]:
        raw: dict[bytes, bytes] = self._client.hgetall(self._hash(context))
        step = 0
        arms: dict[str, ArmState] = {}
        for field, value in raw.items():
            name = field.decode()
            if name == _STEP:
                step = int(value)
            elif name.startswith("arm:"):
                success, failure, plays, at, streak, rest = value.decode().split(",")
                arms[name[4:]] = ArmState(float(success), float(failure), int(plays), int(at), int(streak), int(rest))
        return step, arms

    def update(self, context: str, model: str, evidence: Evidence, decay: Decay) -> None:
        self._update(
            keys=[self._hash(context), self._contexts],
            args=[
                context,
                model,
                _float(evidence.success),
                _float(evidence.failure),
                "1" if evidence.error else "0",
                _float(decay.discount),
                decay.backoff,
                decay.max_backoff,
                decay.heal_after,
                _STEP,
            ],
        )

    def contexts(self) -> list[str]:
        return sorted(member.decode() for member in self._client.smembers(self._contexts))

    def clear(self, context: str | None = None) -> None:
        targets = [context] if context is not None else self.contexts()
        if not targets:
            return
        pipe = self._client.pipeline(transaction=True)
        for name in targets:
            pipe.delete(self._hash(name))
            pipe.srem(self._contexts, name)
        pipe.execute()

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisBanditStore({self.url!r}, prefix={self.prefix!r})"
