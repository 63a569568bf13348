"""What a plan may be asked for: a budget per run in USD, or a share of calls on cloud models.

One check for ``optimize(budget_usd=..., cloud_share=...)`` and the ``plan``/``calibrate``
commands, each naming the values as its caller wrote them (``budget_usd`` or ``--budget``).
"""

from __future__ import annotations

import math

from graphroute.errors import ConfigError


def check_targets(
    budget: object, share: object, *, budget_name: str = "budget_usd", share_name: str = "cloud_share"
) -> None:
    """``ConfigError`` unless the budget is a finite number > 0 and the share a number in [0, 1] (or None)."""
    for name, value in ((budget_name, budget), (share_name, share)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if budget is not None and not 0 < budget < math.inf:  # type: ignore[operator]
        raise ConfigError(f"{budget_name} must be > 0 (USD per run), got {budget:g}; omit it for no budget")
    if share is not None and not 0 <= share <= 1:  # type: ignore[operator]
        raise ConfigError(f"{share_name} must be between 0 and 1, got {share:g} (e.g. 0.2 for 20 % of calls)")
