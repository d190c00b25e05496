"""Saved state of samplers and searchers: the fields of a dataclass, written one way for all.

An algorithm keeps what a restarted search needs in a dataclass it inherits, declared
``@dataclass(eq=False, repr=False)`` so the algorithm keeps its own equality and repr.
``Stateful.state_dict`` writes those fields, and the state of the samplers or searchers it
holds (``nested``); ``load_state_dict`` reads them back as the fields' types say. The JSON
shapes are the ones snapshots have always had, so a search saved by an earlier version
resumes:

- a set as a sorted list; a dict with int keys as ``[key, value]`` pairs sorted by key;
  other dicts as they are; a tuple as a list; a dataclass as the dict of its fields;
- numbers, strings, booleans and None unchanged (NaN and infinities too: the store writes
  them, a strict-JSON state has none).

A field missing from a saved state keeps its value (it did not exist when that was saved).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = ["Stateful", "from_json", "init_fields", "load_fields", "to_json"]


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The field types of the dataclass ``cls`` is or inherits (the nearest one)."""
    hints = _HINTS.get(cls)
    if hints is None:
        owner = next(c for c in cls.__mro__ if "__dataclass_fields__" in vars(c))
        hints = _HINTS[cls] = typing.get_type_hints(owner)
    return hints


def _optional(tp: Any) -> Any:
    """``X`` for ``X | None`` (the only union a state may declare)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return inner
    return tp


def to_json(tp: Any, value: Any) -> Any:
    """``value``, declared as ``tp``, in its JSON shape."""
    return _writer(tp)(value)


def _same(value: Any) -> Any:
    return value


@functools.cache
def _writer(tp: Any) -> Callable[[Any], Any]:
    """What ``to_json`` does for values declared as ``tp``, worked out once per type: a
    snapshot is written at every event of a search, so walking the type hints again for
    every value would cost more than the copying itself."""
    inner = _optional(tp)
    if inner is not tp:
        write = _writer(inner)
        return _same if write is _same else (lambda v: None if v is None else write(v))
    if tp is Any:
        return _same
    if dataclasses.is_dataclass(tp):
        return lambda v: None if v is None else fields_to_json(v)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (set, frozenset):
        item = _writer(args[0])
        if item is _same:
            return lambda v: None if v is None else sorted(v)
        return lambda v: None if v is None else [item(x) for x in sorted(v)]
    if origin is list or (origin is tuple and args[-1:] == (...,)):
        item = _writer(args[0])
        if item is _same:
            return lambda v: None if v is None else list(v)
        return lambda v: None if v is None else [item(x) for x in v]
    if origin is tuple:
        items = [_writer(a) for a in args]
        return lambda v: None if v is None else [w(x) for w, x in zip(items, v, strict=True)]
    if origin is dict:
        item = _writer(args[1])
        if args[0] is int:
            return lambda v: None if v is None else [[k, item(v[k])] for k in sorted(v)]
        return lambda v: None if v is None else {k: item(x) for k, x in v.items()}
    return _same


def from_json(tp: Any, data: Any) -> Any:
    """The value declared as ``tp`` that ``to_json`` wrote as ``data``."""
    tp = _optional(tp)
    if data is None or tp is Any:
        return data
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return tp(**{k: from_json(hints[k], v) for k, v in data.items() if k in hints})
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (set, frozenset):
        return origin(from_json(args[0], v) for v in data)
    if origin is list:
        return [from_json(args[0], v) for v in data]
    if origin is tuple:
        if args[-1:] == (...,):
            return tuple(from_json(args[0], v) for v in data)
        return tuple(from_json(a, v) for a, v in zip(args, data, strict=True))
    if origin is dict:
        pairs = data.items() if isinstance(data, dict) else data
        return {from_json(args[0], k): from_json(args[1], v) for k, v in pairs}
    if tp in (int, float, bool, str):
        return tp(data)
    return data


def fields_to_json(obj: Any) -> dict[str, Any]:
    """The dataclass fields of ``obj`` (a dataclass, or an algorithm that inherits one)."""
    return {name: write(getattr(obj, name)) for name, write in _field_writers(type(obj))}


_WRITERS: dict[type, tuple[tuple[str, Callable[[Any], Any]], ...]] = {}


def _field_writers(cls: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """Each dataclass field of ``cls`` with its writer, in field order."""
    writers = _WRITERS.get(cls)
    if writers is None:
        hints = _hints(cls)
        fields = dataclasses.fields(cls)
        writers = _WRITERS[cls] = tuple((f.name, _writer(hints[f.name])) for f in fields)
    return writers


def load_fields(obj: Any, data: dict[str, Any]) -> None:
    """Set the dataclass fields of ``obj`` that ``data`` holds, from ``fields_to_json``."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        if f.name in data:
            setattr(obj, f.name, from_json(hints[f.name], data[f.name]))


def init_fields(obj: Any) -> None:
    """Give the dataclass fields of ``obj`` their defaults: an algorithm that inherits its
    state dataclass runs its own ``__init__``, not the dataclass's."""
    for f in dataclasses.fields(obj):
        if f.default_factory is not dataclasses.MISSING:
            setattr(obj, f.name, f.default_factory())
        else:
            setattr(obj, f.name, f.default)


class Stateful:
    """``state_dict``/``load_state_dict`` for samplers and searchers: the fields of the
    state dataclass they inherit (none: nothing of their own), then the state of each
    sampler or searcher they hold (``nested``), under its attribute's name."""

    #: Attributes holding a sampler or searcher, or a list of them.
    nested: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state that, with ``load_state_dict``, makes a restarted run continue."""
        state = fields_to_json(self) if dataclasses.is_dataclass(self) else {}
        for name in self.nested:
            held = getattr(self, name)
            if isinstance(held, list):
                state[name] = [h.state_dict() for h in held]
            else:
                state[name] = held.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if dataclasses.is_dataclass(self):
            load_fields(self, state)
        for name in self.nested:
            if name not in state:
                continue
            held = getattr(self, name)
            if isinstance(held, list):
                for h, saved in zip(held, state[name], strict=False):
                    h.load_state_dict(saved)
            else:
                held.load_state_dict(state[name])
