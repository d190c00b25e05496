"""The encoding of a search space that TPE and the GP search in, and ``SearchSpace.encode``."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from ridgeline.errors import ObservationError, SpaceError
from ridgeline.samplers.encoding import Encoding
from ridgeline.space import Choice, Constant, Continuous, Discrete, Ordinal, SearchSpace


def _space() -> SearchSpace:
    return SearchSpace(
        [
            Continuous("x", [-2.0, 3.0]),
            Continuous("lr", [1e-5, 1.0], scale="log"),
            Discrete("n", [1, 16]),
            Choice("act", ["relu", "tanh", "elu"]),
            Discrete("m", [1, 1000], scale="log"),
            Ordinal("o", [1, 2, 4, 8]),
            Constant("k", 7),
            Choice("one", ["only"]),
        ]
    )


def test_columns_follow_the_definition_order_without_constants():
    enc = Encoding(_space())
    assert [c.param.name for c in enc.columns] == ["x", "lr", "n", "act", "m", "o", "one"]
    assert [p.name for p in enc.numeric] == ["x", "lr", "n", "m", "o"]
    assert [p.name for p in enc.choices] == ["act", "one"]
    assert enc.sizes == [3, 1] and enc.dims == 7
    assert [c.at for c in enc.columns] == [0, 1, 2, 3, 4, 5, 7]
    assert [enc.numeric[j].name for j in enc.bins] == ["n", "m", "o"]


def test_numeric_columns_are_exactly_to_unit_and_decode_is_from_unit():
    space = _space()
    enc = Encoding(space)
    rng = random.Random(0)
    rows = [space.sample(rng) for _ in range(500)]
    u, c, ok = enc.encode(rows)
    assert ok.all()
    expected = [[p.to_unit(r[p.name]) for p in enc.numeric] for r in rows]
    assert u.tolist() == expected  # bit for bit, log scales included
    assert c.tolist() == [[q.index(r[q.name]) for q in enc.choices] for r in rows]
    for i, r in enumerate(rows):
        back = enc.decode(u[i], c[i])
        assert list(back) == space.names
        assert back["lr"] == pytest.approx(r["lr"]) and back["x"] == pytest.approx(r["x"])
        assert {k: v for k, v in back.items() if k not in ("x", "lr")} == {
            k: v for k, v in r.items() if k not in ("x", "lr")
        }
        assert type(back["n"]) is int and type(back["x"]) is float


def test_one_row_encodes_as_in_a_batch():
    space = _space()
    enc = Encoding(space)
    rows = [space.sample(random.Random(i)) for i in range(20)]
    u, c, _ = enc.encode(rows)
    for i, r in enumerate(rows):
        u1, c1, _ = enc.encode([r])
        assert u1[0].tolist() == u[i].tolist() and c1[0].tolist() == c[i].tolist()


@pytest.mark.parametrize(
    "name, value",
    [
        ("x", None),
        ("x", "1.5"),
        ("x", math.nan),
        ("lr", 0.0),
        ("lr", math.inf),
        ("n", math.inf),
        ("n", "3"),
        ("act", "sigmoid"),
        ("o", 3),
        ("one", "other"),
    ],
)
def test_a_value_that_is_not_legal_drops_the_row(name, value):
    space = _space()
    good = space.sample(random.Random(1))
    enc = Encoding(space)
    _, _, ok = enc.encode([good, {**good, name: value}])
    assert ok.tolist() == [True, False]
    missing = {k: v for k, v in good.items() if k != name}
    assert enc.encode([missing])[2].tolist() == [False]


def test_numbers_outside_the_range_are_clipped_and_integers_rounded():
    space = _space()
    enc = Encoding(space)
    good = space.sample(random.Random(2))
    u, _, ok = enc.encode([{**good, "x": 9.0, "n": 40, "m": 2.6}, {**good, "x": -9.0, "n": -3}])
    assert ok.all()
    n, m = space["n"], space["m"]
    assert u[:, 0].tolist() == [1.0, 0.0]  # x
    assert u[:, 2].tolist() == [n.to_unit(16), n.to_unit(1)]
    assert u[0, 3] == m.to_unit(3)


def test_bins_snap_to_the_centres_of_the_legal_values():
    space = _space()
    enc = Encoding(space)
    for j in enc.bins.tolist():
        p = enc.numeric[j]
        values = p.range if isinstance(p, Ordinal) else range(p.range[0], p.range[1] + 1)
        assert enc.centres(j).tolist() == [p.to_unit(v) for v in values]
    u = np.random.default_rng(0).random((200, len(enc.numeric)))
    snapped, lower, upper = enc.snap(u)
    for j in enc.bins.tolist():
        assert (lower[:, j] <= u[:, j]).all() and (u[:, j] <= upper[:, j]).all()
        assert set(snapped[:, j].tolist()) <= set(enc.centres(j).tolist())
    assert (snapped[:, enc.smooth] == u[:, enc.smooth]).all()


def test_the_unit_cube_has_a_coordinate_per_parameter():
    space = _space()
    enc = Encoding(space)
    params = space.sample(random.Random(3))
    u, c, _ = enc.encode([params])
    cube = enc.to_cube(u, c)
    assert cube.shape == (1, len(space))
    assert cube[0, 3] == (space["act"].index(params["act"]) + 0.5) / 3
    assert cube[0, 6] == 0.5 and cube[0, 7] == 0.5  # the Constant, the one-value Choice
    u2, c2 = enc.from_cube(cube)
    assert u2.tolist() == u.tolist() and c2.tolist() == c.tolist()
    _, picked = enc.from_cube(np.array([[0.5] * 3 + [share] + [0.5] * 4 for share in (0, 0.34, 1)]))
    assert picked[:, 0].tolist() == [0, 1, 2]


def test_search_space_encode_and_decode_read_the_same_encoding():
    space = _space()
    params = space.sample(random.Random(4))
    unit = space.encode(params)
    assert unit == Encoding(space).point(params)
    assert space.decode(unit) == Encoding(space).at(unit)
    with pytest.raises(ObservationError, match="'act'"):
        space.encode({**params, "act": "sigmoid"})
    with pytest.raises(SpaceError, match="finite"):
        space.decode([math.nan] * len(space))
