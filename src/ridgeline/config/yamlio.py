"""Safe YAML loading with line numbers, duplicate-key detection and ``--config`` overrides.

Only ``yaml.SafeLoader`` is used: tags such as ``!!python/object`` are errors, never objects.
Two resolver changes bring PyYAML (YAML 1.1) in line with the Go parser Determined uses:
``1e-4`` is a float (PyYAML reads it as a string), and dates stay strings (so every value is
JSON data).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

from ridgeline.config.checks import Problems, join, plain_copy, show
from ridgeline.errors import ConfigError
from ridgeline.paths import user_config_file

__all__ = ["apply_overrides", "load_yaml"]

_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):  # type: ignore[misc, unused-ignore]
    """SafeLoader that records duplicate keys instead of silently keeping the last one."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[Any, int, int]] = []

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[tuple[str, str], int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                    continue
                key = (key_node.tag, key_node.value)
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.duplicates.append((key_node.value, line, seen[key]))
                else:
                    seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _resolvers() -> dict[Any, list[tuple[str, Any]]]:
    table: dict[Any, list[tuple[str, Any]]] = {}
    for first, items in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = []
        for tag, regexp in items:
            if tag == _TIMESTAMP_TAG:
                continue
            kept.append((tag, _FLOAT if tag == _FLOAT_TAG else regexp))
        table[first] = kept
    for first in "-+0123456789.":
        entries = table.setdefault(first, [])
        if not any(tag == _FLOAT_TAG for tag, _ in entries):
            entries.insert(0, (_FLOAT_TAG, _FLOAT))
    return table


_Loader.yaml_implicit_resolvers = _resolvers()


def _node_lines(node: Any) -> dict[str, int]:
    """``key.path`` -> 1-based line of every key and list item in the composed document."""
    lines: dict[str, int] = {}
    seen: set[int] = set()

    def walk(n: Any, path: str) -> None:
        if id(n) in seen:  # an alias: already walked where the anchor is
            return
        if isinstance(n, yaml.MappingNode):
            seen.add(id(n))
            for key_node, value_node in n.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                    sub = join(path, key_node.value)
                    lines.setdefault(sub, key_node.start_mark.line + 1)
                    walk(value_node, sub)
        elif isinstance(n, yaml.SequenceNode):
            seen.add(id(n))
            for i, item in enumerate(n.value):
                sub = f"{path}[{i}]"
                lines.setdefault(sub, item.start_mark.line + 1)
                walk(item, sub)

    walk(node, "")
    return lines


def _yaml_problem(exc: yaml.YAMLError, what: str) -> tuple[int | None, str]:
    """(line, message) for a YAML error."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    where = f"line {line}, column {mark.column + 1}: " if mark is not None else ""
    if isinstance(exc, yaml.constructor.ConstructorError):
        tag = re.search(r"tag '([^']*)'", str(exc.problem or ""))
        shown = tag.group(1).replace("tag:yaml.org,2002:", "!!") if tag else "this tag"
        return line, (
            f"{where}{shown} is not allowed: configs are loaded safely and hold only plain data "
            f"(mappings, lists, strings, numbers, booleans, null); remove the tag"
        )
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    detail = f"{problem}"
    if context:
        start = getattr(exc, "context_mark", None)
        opened = ""
        if start is not None and mark is not None and start.line != mark.line:
            opened = f" that starts on line {start.line + 1}"
        detail += f" ({context}{opened})"
    return line, f"{where}invalid YAML in {what}: {detail}; fix the syntax there"


def load_yaml(text: str, source: str) -> tuple[Any, dict[str, int], list[str]]:
    """Parse one YAML document: (data, key-path lines, problems that stop parsing)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines = _node_lines(node) if node is not None else {}
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        return None, {}, [_yaml_problem(exc, source)[1]]
    except RecursionError:
        return None, {}, ["the YAML is nested too deeply to read; flatten it"]
    finally:
        loader.dispose()
    problems = [
        f"line {line}: key {key!r} appears twice (first on line {first}); keep one of them"
        for key, line, first in loader.duplicates
    ]
    return data, lines, problems


def _value(text: str) -> Any:
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def apply_overrides(p: Problems, data: dict[str, Any], overrides: Sequence[str]) -> list[str]:
    """Apply ``KEY=VALUE`` strings (dotted keys, YAML values) to ``data``; the keys set."""
    if isinstance(overrides, str):
        overrides = [overrides]
    done: list[str] = []
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            p.add(
                "--config",
                f"an override is KEY=VALUE (got {show(item)}); e.g. --config searcher.max_trials=5",
            )
            continue
        key, _, text = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not all(parts):
            p.add("--config", f"the key of {item!r} is empty or has an empty part; e.g. a.b=1")
            continue
        try:
            value = plain_copy(p, _value(text), key)
        except yaml.YAMLError as exc:
            _, message = _yaml_problem(exc, f"the value of --config {key}")
            p.add(key, f"{message.replace('; fix the syntax there', '')}; quote the value")
            continue
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                p.add(
                    ".".join(parts[: i + 1]),
                    f"--config {key}=... sets a key inside a value that is not a mapping "
                    f"(got {show(child)}); override {'.'.join(parts[: i + 1])} itself",
                )
                break
            node = child
        else:
            node[parts[-1]] = value
            done.append(key)
    return done


def read_user_config(path: Path | None = None) -> tuple[Any, dict[str, int], list[str], str]:
    """The user config file parsed: (data, key-path lines, problems that stop parsing, the
    file's name); data is None when there is no file. An unreadable file is a ConfigError."""
    path = path or user_config_file()
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, {}, [], shown
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read the ridgeline config file ({exc})") from None
    data, lines, fatal = load_yaml(text, shown)
    return data, lines, fatal, shown
