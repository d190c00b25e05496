"""Problem collection and the small typed checks every config section uses.

Every check records a problem instead of raising, so one ``InvalidConfig`` lists everything that
is wrong with a file. Messages read ``key.path: what is wrong (got X); fix``.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from ridgeline.errors import ConfigError

__all__ = ["InvalidConfig", "Problems", "join", "show"]

#: The most elements a config may expand to (YAML aliases can multiply a small file).
MAX_ELEMENTS = 1_000_000


class InvalidConfig(ConfigError):
    """An experiment config with one or more problems; ``problems`` lists them one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        count = len(problems)
        head = f"{source}: {count} problem{'s' if count != 1 else ''} in the experiment config:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in problems)]))

    def __reduce__(self) -> tuple[type[InvalidConfig], tuple[str, list[str]]]:
        return (type(self), (self.source, self.problems))


def join(path: str, key: object) -> str:
    """``path.key`` (just ``key`` at the top level)."""
    return f"{path}.{key}" if path else str(key)


def show(value: Any, limit: int = 60) -> str:
    """A short ``repr`` for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: What a value of each YAML type is called in messages (bool before int: a bool is an int).
_KINDS: tuple[tuple[type, str], ...] = (
    (type(None), "null"),
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (Mapping, "a mapping"),
    (list, "a list"),
)


def kind(value: Any) -> str:
    """What a value is, in words."""
    for cls, word in _KINDS:
        if isinstance(value, cls):
            return word
    return type(value).__name__


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest valid word to a misspelt one, if any is close."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


class Problems:
    """Collects problems with their key paths, then formats them with line numbers."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        #: Keys Determined deprecated or removed (ignored here), as key paths.
        self.deprecated: list[str] = []
        #: Keys accepted for compatibility that configure a Determined cluster (no effect here).
        self.no_effect: list[str] = []
        #: Other warnings, one sentence each, and whether each is about a deprecated key.
        self.notes: list[tuple[str, bool]] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def bad(self, path: str, expected: str, value: Any, fix: str = "") -> None:
        """``path: must be <expected> (got <value>)[; fix]``."""
        got = "none" if value is _MISSING else show(value)
        self.add(path, f"must be {expected} (got {got})" + (f"; {fix}" if fix else ""))

    def missing(self, path: str, what: str, fix: str) -> None:
        self.add(path, f"{what} is required (got none); {fix}")

    def unknown_keys(
        self, path: str, mapping: Mapping[str, Any], valid: Iterable[str], what: str = ""
    ) -> list[str]:
        """Report keys outside ``valid`` with a did-you-mean; returns the unknown keys."""
        valid = list(valid)
        unknown = [k for k in mapping if k not in valid]
        for key in unknown:
            hint = suggest(str(key), valid)
            where = f" for {what}" if what else ""
            if hint is not None:
                fix = f"did you mean {hint!r}?"
            else:
                fix = f"valid keys here: {', '.join(sorted(valid))}"
            self.add(join(path, key), f"unknown key{where}; {fix}")
        return unknown

    def messages(self, lines: Mapping[str, int], overridden: Iterable[str] = ()) -> list[str]:
        """Each problem as ``[line N: ]path: message``, in file order (by line)."""
        overridden = tuple(overridden)
        out = []
        for path, message in self.items:
            prefix = ""
            line = None
            if any(path == o or path.startswith((o + ".", o + "[")) for o in overridden):
                prefix = "--config: "
            else:
                line = _line_of(path, lines)
                if line is not None:
                    prefix = f"line {line}: "
            text = f"{prefix}{path}: {message}" if path else f"{prefix}{message}"
            out.append((line or 0, text))
        return [text for _, text in sorted(out, key=lambda item: item[0])]


def _line_of(path: str, lines: Mapping[str, int]) -> int | None:
    """The line of ``path`` or of its nearest ancestor that the file names."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            return None
        path = path[:cut]
    return None


class _Missing:
    def __repr__(self) -> str:
        return "none"


_MISSING: Any = _Missing()


# -- typed getters: the value, or None after recording a problem ------------------------------


def whole(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (``5`` or ``5.0``; not ``True``)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def as_int(
    p: Problems, path: str, value: Any, minimum: int | None = None, fix: str = ""
) -> int | None:
    """An integer (integral floats such as ``5.0`` pass); booleans and strings do not."""
    number = whole(value)
    expected = "an integer" if minimum is None else f"an integer >= {minimum}"
    if number is None or (minimum is not None and number < minimum):
        if isinstance(value, str) and not fix:
            fix = "write the number without quotes"
        p.bad(path, expected, value, fix)
        return None
    return number


def as_number(p: Problems, path: str, value: Any, fix: str = "") -> float | int | None:
    """A finite int or float (kept as written)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        if isinstance(value, str) and not fix:
            fix = "write the number without quotes"
        p.bad(path, "a finite number", value, fix)
        return None
    return value


def as_str(p: Problems, path: str, value: Any, fix: str = "", empty: bool = False) -> str | None:
    if not isinstance(value, str) or (not empty and not value.strip()):
        p.bad(path, "a string" if empty else "a non-empty string", value, fix)
        return None
    return value


def as_bool(p: Problems, path: str, value: Any) -> bool | None:
    if not isinstance(value, bool):
        p.bad(path, "true or false", value)
        return None
    return value


def as_mapping(p: Problems, path: str, value: Any, fix: str = "") -> dict[str, Any] | None:
    """A mapping; ``None`` (an empty section) reads as ``{}``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        p.bad(path, "a mapping of keys to values", value, fix)
        return None
    return value


def plain_copy(p: Problems, value: Any, path: str = "") -> Any:
    """A deep copy made of dict/list/str/int/float/bool/None, or None after recording problems.

    Tuples become lists; anything else (dates, bytes, sets, objects) and non-string keys are
    problems, so what is stored round-trips through JSON. Cycles and alias bombs are refused.
    """
    budget = [MAX_ELEMENTS]
    active: set[int] = set()
    failed = [False]

    def walk(v: Any, where: str) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            if budget[0] == -1:
                p.add(
                    where or "config",
                    f"the config expands to more than {MAX_ELEMENTS} values (YAML aliases?); "
                    f"write it out plainly",
                )
            failed[0] = True
            return None
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, numbers.Integral):
            return int(v)
        if isinstance(v, numbers.Real):
            return float(v)
        if isinstance(v, (Mapping, list, tuple)):
            if id(v) in active:
                p.add(where or "config", "refers to itself (a recursive YAML alias); remove it")
                failed[0] = True
                return None
            active.add(id(v))
            try:
                if isinstance(v, Mapping):
                    out = {}
                    for key, item in v.items():
                        if not isinstance(key, str):
                            p.add(
                                join(where, show(key)),
                                f"keys must be strings (got {kind(key)} {show(key)}); "
                                f"quote the key",
                            )
                            failed[0] = True
                            continue
                        out[key] = walk(item, join(where, key))
                    return out
                return [walk(item, f"{where}[{i}]") for i, item in enumerate(v)]
            finally:
                active.discard(id(v))
        p.add(
            where or "config",
            f"values must be plain YAML/JSON data (got {type(v).__name__} {show(v)}); "
            f"write it as a string, number, list or mapping",
        )
        failed[0] = True
        return None

    result = walk(value, path)
    return None if failed[0] else result


def ensure_valid(
    p: Problems, source: str, lines: Mapping[str, int], overridden: Iterable[str]
) -> None:
    """Raise ``InvalidConfig`` listing every problem, if there are any."""
    if p:
        raise InvalidConfig(source, p.messages(lines, overridden))
