"""Saved state as JSON: the shapes the encoder writes, and snapshots written by earlier
versions (field by field, before ``ridgeline.statedict``) loading unchanged."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from ridgeline.errors import ConfigError
from ridgeline.samplers.random import RandomSampler
from ridgeline.searchers.adaptive import AdaptiveASHASearcher
from ridgeline.searchers.asha import WORST, ASHASearcher
from ridgeline.searchers.fifo import FIFOSearcher
from ridgeline.searchers.hyperband import SyncHalvingSearcher
from ridgeline.searchers.pbt import PBTSearcher
from ridgeline.statedict import from_json, to_json


@dataclass
class Inner:
    metrics: list[tuple[int, float]] = field(default_factory=list)
    promoted: set[int] = field(default_factory=set)


@dataclass
class Example:
    count: int = 0
    ratio: float = 0.0
    flags: set[int] = field(default_factory=set)
    by_trial: dict[int, float] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    inner: Inner = field(default_factory=Inner)
    rungs: list[Inner] = field(default_factory=list)


def test_shapes_and_round_trip() -> None:
    value = Example(
        count=3,
        ratio=math.inf,
        flags={5, 1, 3},
        by_trial={2: 0.5, 1: -1.0},
        params={"lr": 0.1, "act": "relu"},
        inner=Inner([(4, 0.2), (1, 0.3)], {4}),
        rungs=[Inner(), Inner([(2, WORST)])],
    )
    saved = to_json(Example, value)
    assert saved == {
        "count": 3,
        "ratio": math.inf,  # as it is: the store writes it, a strict state never has one
        "flags": [1, 3, 5],
        "by_trial": [[1, -1.0], [2, 0.5]],
        "params": {"lr": 0.1, "act": "relu"},
        "inner": {"metrics": [[4, 0.2], [1, 0.3]], "promoted": [4]},
        "rungs": [{"metrics": [], "promoted": []}, {"metrics": [[2, WORST]], "promoted": []}],
    }
    assert from_json(Example, json.loads(json.dumps(saved))) == value
    assert from_json(Example, {"count": 2}) == Example(count=2)  # the rest: defaults
    assert math.isnan(from_json(Example, {"ratio": math.nan}).ratio)
    # int keys written as a JSON object (str keys) read too
    assert from_json(Example, {"by_trial": {"7": 1}}).by_trial == {7: 1.0}


def test_a_field_missing_from_an_old_snapshot_keeps_its_default() -> None:
    searcher = FIFOSearcher(RandomSampler(), max_trials=5, replace_invalid=True)
    searcher.load_state_dict({"created": 3, "exhausted": False, "sampler": {}})
    assert searcher.state_dict() == {
        "created": 3,
        "invalid": 0,
        "own": [],
        "exhausted": False,
        "sampler": {},
    }


# States saved mid-run by the versions that listed every field by hand.
EARLIER = {
    "asha": (
        lambda: ASHASearcher(RandomSampler(), 5, 9, 2, 3, 2),
        {
            "rungs": [
                {
                    "metrics": [[4, 0.59], [2, 1.09], [1, 1.17], [3, WORST]],
                    "promoted": [2, 4],
                },
                {"metrics": [[2, 0.87]], "promoted": []},
            ],
            "exited": [3],
            "ended": [3],
            "rung_of": [[1, 0], [2, 1], [3, 0], [4, 1]],
            "outstanding": [4],
            "pending": [],
            "finished": [2, 3],
            "extra": [],
            "created": 4,
            "invalid": 0,
            "exhausted": False,
            "done": False,
            "sampler": {},
        },
    ),
    "sync_halving": (
        lambda: SyncHalvingSearcher(RandomSampler(), 4, 4, 2, 2, 2),
        {
            "members": [[1, 2], []],
            "scores": [[[1, 1.34]], []],
            "rung_of": [[1, 0], [2, 0]],
            "outstanding": [2],
            "pending": [],
            "finished": [],
            "extra": [],
            "created": 2,
            "invalid": 0,
            "exhausted": False,
            "done": False,
            "sampler": {},
        },
    ),
    "pbt": (
        lambda: PBTSearcher(RandomSampler(), 3, 3, 2, 0.34),
        {
            "round": 2,
            "members": [3, 1, 4],
            "scores": [[1, 1.09]],
            "target": [[1, 4], [2, 2], [3, 4], [4, 4]],
            "outstanding": [3, 4],
            "awaiting": [],
            "failed": [],
            "finished": [2],
            "children": [[5, 1]],
            "pending": [],
            "extra": [],
            "created": 4,
            "invalid": 0,
            "exhausted": False,
            "done": False,
            "sampler": {},
        },
    ),
    "adaptive_asha": (
        lambda: AdaptiveASHASearcher(RandomSampler(), 4, 9, divisor=3),
        {
            "brackets": [
                {
                    "rungs": [
                        {"metrics": [[1, 1.17]], "promoted": []},
                        {"metrics": [], "promoted": []},
                    ],
                    "exited": [],
                    "ended": [],
                    "rung_of": [[1, 0]],
                    "outstanding": [],
                    "pending": [],
                    "finished": [],
                    "extra": [],
                    "created": 1,
                    "invalid": 0,
                    "exhausted": False,
                    "done": False,
                },
                {
                    "rungs": [{"metrics": [], "promoted": []}],
                    "exited": [],
                    "ended": [],
                    "rung_of": [[2, 0]],
                    "outstanding": [2],
                    "pending": [],
                    "finished": [],
                    "extra": [],
                    "created": 1,
                    "invalid": 0,
                    "exhausted": False,
                    "done": False,
                },
            ],
            "owner": [[1, 0], [2, 1]],
            "done": False,
            "sampler": {},
        },
    ),
}


@pytest.mark.parametrize("name", sorted(EARLIER))
def test_snapshots_of_earlier_versions_load_unchanged(name: str) -> None:
    make, saved = EARLIER[name]
    searcher = make()
    searcher.load_state_dict(json.loads(json.dumps(saved)))
    assert searcher.state_dict() == saved


def test_a_snapshot_with_other_rungs_is_refused() -> None:
    _, saved = EARLIER["asha"]
    with pytest.raises(ConfigError, match="saved searcher state has 2 rungs"):
        ASHASearcher(RandomSampler(), 5, 9, 3, 3, 2).load_state_dict(saved)
