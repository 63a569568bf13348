"""The rules pillar: deterministic checks that run in microseconds before anything else.

Two jobs. First, hard constraints: privacy and data-residency rules (e-mail addresses, phone
numbers, payment cards that pass the Luhn check, IBANs that pass mod-97, account numbers,
US social security numbers, user patterns, a node's ``local_only`` flag, or a call's
``local_only`` metadata) yield ``Signal(local_only=True)``, which no later pillar may override.
Second, cheap difficulty hints: length thresholds, keyword and safe lists, regexes, code and
maths detectors, and per-node overrides. A rule that fires gives a difficulty with moderate
confidence; when none fires the signal has no difficulty and zero confidence, so the cascade
asks the next pillar.

Everything is compiled once in ``RulesPillar.__init__``; ``score`` only runs precompiled
regexes, guarded by cheap character tests (no ``@`` → no e-mail scan, no digit → no number
scans). Tokens are estimated as characters / 4, which is what the thresholds mean.

Config (``[rules]`` in a TOML file, or ``RulesConfig(...)``); unknown keys are errors::

    [rules]
    long_tokens = 2000
    hard_keywords = ["prove", "step by step"]
    [rules.privacy]
    patterns = ['\\bPRJ-\\d{4}\\b']          # internal project codes stay local
    allow = ['@example\\.com$']             # public addresses are not PII
    [rules.nodes.summarize]
    difficulty = 0.2                        # this node's calls are easy
    [rules.nodes.triage]
    local_only = true                       # this node reads customer records
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from graphroute.errors import ConfigError
from graphroute.pillars.base import Pillar, RouteRequest, Signal

__all__ = ["NodeRules", "PiiDetector", "PrivacyRules", "RulesConfig", "RulesPillar", "load_rules_config"]

PiiKind = Literal["email", "phone", "card", "iban", "account", "ssn"]
# Checked in this order, most specific first, so a reason names an IBAN as an IBAN, not a phone number.
PII_KINDS: tuple[PiiKind, ...] = ("email", "card", "iban", "ssn", "account", "phone")

# Every number-shaped datum (phone, card, IBAN, account, SSN) holds a run of 6+ digit-ish characters.
_NUMBERISH = re.compile(r"\d[\d \t().+/-]{4,}\d")
_PII: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    # Candidates only: a phone match must also hold 9–15 digits (see _valid).
    "phone": re.compile(r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?\(?\d{2,4}\)?(?:[\s.-]?\d{2,4}){2,4}(?![\w.])"),
    "card": re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"),
    "account": re.compile(
        r"\b(?:account|acct|a/c|routing|sort[ -]code|bsb)\b(?: ?(?:number|no\.?|#))?[\s:#-]{0,3}\d[\d -]{4,}\d",
        re.IGNORECASE,
    ),
    "ssn": re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"),
}
_LABELS = {
    "email": "e-mail address",
    "phone": "phone number",
    "card": "payment card number",
    "iban": "IBAN",
    "account": "account number",
    "ssn": "social security number",
}


def luhn_valid(digits: str) -> bool:
    """The checksum every payment card number satisfies (filters out order ids and the like)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616 mod-97 check."""
    compact = text.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def _valid(kind: str, match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    if kind == "phone":
        return 9 <= len(digits) <= 15 and not re.fullmatch(r"\d+", match)
    if kind == "card":
        return 13 <= len(digits) <= 19 and luhn_valid(digits)
    if kind == "iban":
        return iban_valid(match)
    return True


class PiiDetector:
    """Finds personal data; precompiled, with cheap guards so clean text costs microseconds.

    A phone number must contain a separator or ``+`` (a bare run of digits is more often an
    id or a quantity), card numbers must pass Luhn and IBANs mod-97, which keeps maths and
    order numbers from forcing a local model.
    """

    def __init__(
        self, kinds: tuple[PiiKind, ...] = PII_KINDS, patterns: tuple[str, ...] = (), allow: tuple[str, ...] = ()
    ) -> None:
        self._builtin = [(kind, _PII[kind]) for kind in PII_KINDS if kind in kinds]
        self._custom = [re.compile(pattern) for pattern in patterns]
        self._allow = re.compile("|".join(f"(?:{p})" for p in allow)) if allow else None

    def _allowed(self, match: str) -> bool:
        return self._allow is not None and self._allow.search(match) is not None

    def first(self, text: str) -> str | None:
        """A description of the first personal datum found, or None."""
        has_at = "@" in text
        numberish = _NUMBERISH.search(text) is not None
        for kind, regex in self._builtin:
            if (kind == "email" and not has_at) or (kind != "email" and not numberish):
                continue
            for match in regex.finditer(text):
                if _valid(kind, match.group(0)) and not self._allowed(match.group(0)):
                    return _LABELS[kind]
        for regex in self._custom:
            for match in regex.finditer(text):
                if not self._allowed(match.group(0)):
                    return f"pattern {regex.pattern!r}"
        return None


def _check_regexes(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"invalid regular expression {pattern!r}: {error}") from None
    return patterns


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrivacyRules(_Strict):
    """What counts as personal data that must not leave the machine."""

    enabled: bool = True
    detect: tuple[PiiKind, ...] = PII_KINDS
    patterns: tuple[str, ...] = Field(default=(), description="extra regexes whose match forces a local model")
    allow: tuple[str, ...] = Field(default=(), description="regexes of matches that are not personal data")

    _regexes = field_validator("patterns", "allow")(_check_regexes)


class _Thresholds(_Strict):
    """The difficulty rules; every field can be overridden per node."""

    short_tokens: int | None = Field(default=8, ge=0, description="at or below: easy (None disables)")
    long_tokens: int | None = Field(default=2000, ge=1, description="above: hard (None disables)")
    hard_keywords: tuple[str, ...] = (
        "prove",
        "proof",
        "theorem",
        "derive",
        "step by step",
        "rigorous",
        "in depth",
        "trade-offs",
        "architecture",
        "refactor",
    )
    safe_keywords: tuple[str, ...] = (
        "translate",
        "summarize",
        "summarise",
        "rephrase",
        "reword",
        "spell-check",
        "fix the typo",
        "classify",
        "extract",
        "yes or no",
    )
    hard_patterns: tuple[str, ...] = ()
    easy_patterns: tuple[str, ...] = ()
    detect_code: bool = True
    detect_math: bool = True
    hard_difficulty: float = Field(default=0.8, ge=0, le=1)
    easy_difficulty: float = Field(default=0.2, ge=0, le=1)
    code_difficulty: float = Field(default=0.7, ge=0, le=1)
    math_difficulty: float = Field(default=0.7, ge=0, le=1)

    _regexes = field_validator("hard_patterns", "easy_patterns")(_check_regexes)


class NodeRules(_Thresholds):
    """Per-node overrides: a fixed ``difficulty``, ``local_only``, or any threshold field."""

    difficulty: float | None = Field(default=None, ge=0, le=1, description="fixed difficulty for this node's calls")
    local_only: bool = False


class RulesConfig(_Thresholds):
    """The whole ``[rules]`` table."""

    privacy: PrivacyRules = PrivacyRules()
    nodes: dict[str, dict[str, Any]] = Field(default_factory=dict, description="node name → NodeRules fields")

    @field_validator("nodes")
    @classmethod
    def _valid_nodes(cls, nodes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, fields in nodes.items():
            try:
                NodeRules.model_validate(fields)
            except ValidationError as error:
                raise ValueError(f"nodes.{name}: {error.errors()[0]['msg']} ({error.errors()[0]['loc']})") from None
        return nodes

    def for_node(self, node: str) -> NodeRules:
        """Global thresholds with the node's overrides applied."""
        base = self.model_dump(exclude={"privacy", "nodes"})
        return NodeRules.model_validate({**base, **self.nodes.get(node, {})})


def load_rules_config(path: Path | str) -> RulesConfig:
    """The ``[rules]`` table of a TOML file (empty table or none: defaults)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}", path=path) from None
    try:
        return RulesConfig.model_validate(data.get("rules", {}))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = f"unknown key {where!r}" if first["type"] == "extra_forbidden" else f"{where}: {first['msg']}"
        raise ConfigError(message, path=path, entry="rules") from None


class _Keywords:
    """Whole-word, case-insensitive keyword search on already lower-cased text.

    Substring tests (C speed) first; the word-boundary regex runs only when one of them hits.
    """

    def __init__(self, words: tuple[str, ...]) -> None:
        self.words = tuple(sorted({word.lower() for word in words if word}, key=len, reverse=True))
        alternatives = "|".join(re.escape(word) for word in self.words)
        self._confirm = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)") if self.words else None

    def search(self, lower: str) -> str | None:
        if self._confirm is None:
            return None
        for word in self.words:
            if word in lower:
                match = self._confirm.search(lower)
                return match.group(0) if match else None
        return None


class _Detector:
    """A regex guarded by cheap substring tests: clean prose never reaches the regex."""

    def __init__(self, triggers: tuple[str, ...], regex: re.Pattern[str]) -> None:
        self.triggers, self.regex = triggers, regex

    def search(self, text: str, lower: str) -> bool:
        for trigger in self.triggers:
            if trigger in lower:
                return self.regex.search(text) is not None
        return False


_CODE = _Detector(
    (
        "```",
        "def ",
        "class ",
        "import ",
        "#include",
        "function",
        "=>",
        "console.",
        "system.out",
        ";",
        "{",
        "}",
        "select ",
        "traceback",
        "fn ",
        "func ",
        "package ",
    ),
    re.compile(
        r"```|^\s*(?:def\s+\w+\s*\(|class\s+\w+\s*[:(]|import\s+[\w.]+\s*$|from\s+\S+\s+import|#include"
        r"|public\s+static|fn\s+\w+|func\s+\w+|package\s+\w+)|\bfunction\s*\w*\s*\(|=>\s*[{(]"
        r"|console\.log\(|System\.out\.|;\s*$|^\s*[{}]\s*$|\bSELECT\b.+\bFROM\b|Traceback \(most recent call last\)",
        re.MULTILINE | re.IGNORECASE,
    ),
)
_MATH_SYMBOLS = _Detector(
    ("\\", "$", "^", "∫", "∑", "√", "≤", "≥", "≠"),
    re.compile(
        r"\\(?:frac|int|sum|sqrt|lim|prod|partial|begin\{|mathbb|cdot)|\$[^$\n]*[\\^_][^$\n]*\$"
        r"|\b[a-z]\s*\^\s*\d|[∫∑√≤≥≠]",
        re.IGNORECASE,
    ),
)
_MATH_WORDS = _Keywords(
    (
        "integral",
        "integrate",
        "derivative",
        "differentiate",
        "eigenvalue",
        "eigenvector",
        "matrix",
        "polynomial",
        "equation",
        "theorem",
        "lemma",
        "logarithm",
    )
)


@dataclass(frozen=True)
class _Compiled:
    """One node's (or the global) rules, ready to run."""

    rules: NodeRules
    hard_words: _Keywords
    safe_words: _Keywords
    hard_regex: re.Pattern[str] | None
    easy_regex: re.Pattern[str] | None


class RulesPillar(Pillar):
    """Deterministic privacy constraints and difficulty hints (see the module docstring)."""

    name = "rules"

    def __init__(self, config: RulesConfig | None = None, *, pool: Any = None) -> None:
        """``config``: the rules; else the ``[rules]`` table of ``pool`` (a ``ModelPool``, as a
        router building its pillars by name passes it); else the defaults."""
        if config is None and pool is not None:
            config = pool.config.rules
        self.config = config or RulesConfig()
        privacy = self.config.privacy
        self._pii = PiiDetector(privacy.detect, privacy.patterns, privacy.allow) if privacy.enabled else None
        self._global = self._compile(self.config.for_node(""))
        self._nodes = {node: self._compile(self.config.for_node(node)) for node in self.config.nodes}

    @staticmethod
    def _compile(rules: NodeRules) -> _Compiled:
        def any_of(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
            return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE) if patterns else None

        return _Compiled(
            rules,
            _Keywords(rules.hard_keywords),
            _Keywords(rules.safe_keywords),
            any_of(rules.hard_patterns),
            any_of(rules.easy_patterns),
        )

    def _for(self, node: str | None) -> _Compiled:
        if node is None:
            return self._global
        # Inside a subgraph the node is "parent:inner"; rules for the parent cover its inner nodes.
        return self._nodes.get(node) or self._nodes.get(node.split(":", 1)[0]) or self._global

    def score(self, request: RouteRequest) -> Signal:
        compiled = self._for(request.node)
        rules = compiled.rules
        text = request.text
        reasons: list[str] = []
        local_only = False
        if rules.local_only:
            local_only = True
            reasons.append(f"node {request.node!r} is local-only")
        elif request.metadata.get("local_only"):
            local_only = True
            reasons.append("call marked local_only")
        if self._pii is not None:
            found = self._pii.first(text)
            if found is not None:
                local_only = True
                reasons.append(f"{found} → local only")
        difficulty, confidence = self._difficulty(compiled, text, reasons)
        return Signal(
            self.name, difficulty=difficulty, confidence=confidence, local_only=local_only, reason="; ".join(reasons)
        )

    def _difficulty(self, compiled: _Compiled, text: str, reasons: list[str]) -> tuple[float | None, float]:
        rules = compiled.rules
        if rules.difficulty is not None:
            reasons.append(f"node difficulty {rules.difficulty:g}")
            return rules.difficulty, 1.0
        tokens = len(text) // 4
        lower = text.lower()
        hard: list[tuple[float, float, str]] = []
        if rules.long_tokens is not None and tokens > rules.long_tokens:
            hard.append((rules.hard_difficulty, 0.6, f"~{tokens} tokens > {rules.long_tokens}"))
        if word := compiled.hard_words.search(lower):
            hard.append((rules.hard_difficulty, 0.6, f"hard keyword {word!r}"))
        if compiled.hard_regex is not None and (match := compiled.hard_regex.search(text)):
            hard.append((rules.hard_difficulty, 0.6, f"hard pattern matched {match.group(0)[:30]!r}"))
        if rules.detect_code and _CODE.search(text, lower):
            hard.append((rules.code_difficulty, 0.4, "code"))
        if rules.detect_math and (_MATH_SYMBOLS.search(text, lower) or _MATH_WORDS.search(lower)):
            hard.append((rules.math_difficulty, 0.4, "maths"))
        if hard:
            difficulty = max(d for d, _, _ in hard)
            reasons.extend(reason for _, _, reason in hard)
            return difficulty, max(c for _, c, _ in hard)
        if word := compiled.safe_words.search(lower):
            reasons.append(f"safe keyword {word!r}")
            return rules.easy_difficulty, 0.6
        if compiled.easy_regex is not None and (match := compiled.easy_regex.search(text)):
            reasons.append(f"easy pattern matched {match.group(0)[:30]!r}")
            return rules.easy_difficulty, 0.6
        if rules.short_tokens is not None and tokens <= rules.short_tokens:
            reasons.append(f"~{tokens} tokens ≤ {rules.short_tokens}")
            return rules.easy_difficulty, 0.4
        return None, 0.0
