"""Parameters and search spaces: validation, sampling, grids, unit encoding."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ridgeline.errors import ObservationError, SpaceError
from ridgeline.space import (
    Choice,
    Constant,
    Continuous,
    Discrete,
    Ordinal,
    Parameter,
    SearchSpace,
    bound_rng,
)

# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", None, 3, ["a"]])
def test_name_must_be_non_empty_string(name):
    with pytest.raises(SpaceError, match="name"):
        Continuous(name, [0, 1])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Continuous("lr", "0,1"), "'lr'.*list or tuple"),
        (lambda: Continuous("lr", {0, 1}), "'lr'.*list or tuple"),
        (lambda: Continuous("lr", [0, 1, 2]), "'lr'.*two numbers"),
        (lambda: Continuous("lr", [0]), "'lr'.*two numbers"),
        (lambda: Continuous("lr", ["a", "b"]), "'lr'.*two numbers"),
        (lambda: Continuous("lr", [True, 2]), "'lr'.*two numbers"),
        (lambda: Continuous("lr", [1, 1]), "'lr'.*low must be below high"),
        (lambda: Continuous("lr", [2, 1]), "'lr'.*low must be below high"),
        (lambda: Continuous("lr", [0, math.inf]), "'lr'.*finite"),
        (lambda: Continuous("lr", [0, 1], scale="log"), "'lr'.*log scale needs bounds > 0"),
        (lambda: Continuous("lr", [-1, 1], scale="log"), "'lr'.*log scale"),
        (lambda: Continuous("lr", [0, 1], scale="exp"), "'lr'.*unknown scale 'exp'"),
        (lambda: Discrete("n", [1, 4.5]), "'n'.*integers"),
        (lambda: Discrete("n", [0.5, 4]), "'n'.*integers"),
        (lambda: Discrete("n", [0, 4], scale="log"), "'n'.*log scale"),
        (lambda: Discrete("n", [4, 4]), "'n'.*low must be below high"),
        (lambda: Discrete("n", [1, 4], scale="Log"), "'n'.*unknown scale"),
        (lambda: Choice("act", []), "'act'.*empty"),
        (lambda: Ordinal("size", []), "'size'.*empty"),
        (lambda: Choice("act", ["relu", "tanh", "relu"]), "'act'.*'relu' appears more than once"),
        (lambda: Ordinal("size", [1, 2, 2]), "'size'.*appears more than once"),
        (lambda: Choice("act", [[1], [1]]), "'act'.*more than once"),
        (lambda: Choice("act", "relu"), "'act'.*list or tuple"),
    ],
)
def test_validation_errors_name_the_parameter(make, match):
    with pytest.raises(SpaceError, match=match):
        make()


def test_space_error_is_a_value_error():
    with pytest.raises(ValueError):
        Discrete("n", [3, 1])


def test_tuples_accepted_and_stored_as_lists():
    p = Continuous("lr", (0.1, 1.0))
    assert p.range == [0.1, 1.0] and isinstance(p.range, list)
    c = Choice("act", ("a", "b"))
    assert c.range == ["a", "b"]


def test_discrete_accepts_integral_floats():
    p = Discrete("n", [1.0, 4.0])
    assert p.range == [1, 4] and all(type(x) is int for x in p.range)


def test_sherpa_attributes():
    c = Continuous("lr", [1e-4, 1e-1], scale="log")
    assert (c.name, c.range, c.scale, c.type) == ("lr", [1e-4, 1e-1], "log", float)
    d = Discrete("n", [1, 4])
    assert (d.scale, d.type) == ("linear", int)
    assert Choice("act", ["relu", "tanh"]).type is str
    assert Ordinal("size", [8, 16]).type is int
    k = Constant("seed", 7)
    assert (k.range, k.type, k.value) == ([7], int, 7)
    assert not isinstance(Ordinal("o", [1, 2]), Choice)  # as in SHERPA


def test_from_dict():
    assert isinstance(
        Parameter.from_dict({"name": "x", "type": "continuous", "range": [0, 1]}), Continuous
    )
    d = Parameter.from_dict({"name": "n", "type": "discrete", "range": [1, 8], "scale": "log"})
    assert isinstance(d, Discrete) and d.scale == "log"
    assert isinstance(Parameter.from_dict({"name": "c", "type": "choice", "range": [1]}), Choice)
    assert isinstance(Parameter.from_dict({"name": "o", "type": "ordinal", "range": [1]}), Ordinal)


@pytest.mark.parametrize(
    "config, match",
    [
        ({"name": "x", "type": "gaussian", "range": [0, 1]}, "'x'.*unknown type 'gaussian'"),
        ({"name": "x", "range": [0, 1]}, "'x'.*unknown type None"),
        ({"name": "x", "type": "continuous"}, "'x'.*no 'range'"),
        ({"name": "x", "type": "continuous", "range": [0, 1], "scale": "ln"}, "'x'.*scale"),
        ("x", "must be a dict"),
    ],
)
def test_from_dict_errors(config, match):
    with pytest.raises(SpaceError, match=match):
        Parameter.from_dict(config)


def test_parameter_grid_helper():
    params = Parameter.grid({"act": ["relu", "tanh"], "lr": [0.1, 0.01]})
    assert [type(p) for p in params] == [Choice, Choice]
    assert [(p.name, p.range) for p in params] == [("act", ["relu", "tanh"]), ("lr", [0.1, 0.01])]


# -- sampling ---------------------------------------------------------------------------------


def test_continuous_samples_in_bounds_and_typed():
    rng = random.Random(1)
    for p in (Continuous("x", [-2, 3]), Continuous("y", [1e-5, 1e-1], scale="log")):
        values = [p.sample(rng) for _ in range(2000)]
        assert all(type(v) is float and p.range[0] <= v <= p.range[1] for v in values)
        assert all(p.contains(v) for v in values)


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_discrete_upper_bound_reachable(scale):
    """REFERENCE 8.1: every integer in [lo, hi] can be drawn, the upper bound included."""
    p = Discrete("n", [1, 4], scale=scale)
    rng = random.Random(0)
    counts = Counter(p.sample(rng) for _ in range(4000))
    assert set(counts) == {1, 2, 3, 4}
    assert all(type(v) is int for v in counts)


def test_discrete_linear_is_uniform():
    p = Discrete("n", [0, 9])
    rng = random.Random(5)
    counts = Counter(p.sample(rng) for _ in range(20000))
    assert set(counts) == set(range(10))
    assert all(1700 < c < 2300 for c in counts.values())


def test_discrete_log_is_log_uniform_and_in_bounds():
    p = Discrete("n", [1, 999], scale="log")
    rng = random.Random(3)
    values = [p.sample(rng) for _ in range(30000)]
    assert min(values) >= 1 and max(values) <= 999
    assert 999 in values or any(v > 900 for v in values)
    decades = Counter(len(str(v)) for v in values)  # 1-9, 10-99, 100-999: a third each
    for d in (1, 2, 3):
        assert abs(decades[d] / len(values) - 1 / 3) < 0.03


def test_continuous_log_is_log_uniform():
    p = Continuous("lr", [1e-4, 1.0], scale="log")
    rng = random.Random(7)
    values = [p.sample(rng) for _ in range(40000)]
    decades = Counter(min(int(-math.floor(math.log10(v))), 4) for v in values)
    for d in (1, 2, 3, 4):  # [1e-4,1e-3), [1e-3,1e-2), [1e-2,1e-1), [1e-1,1]
        assert abs(decades[d] / len(values) - 0.25) < 0.02


def test_choice_and_ordinal_sample_every_value():
    rng = random.Random(2)
    c = Choice("act", ["relu", "tanh", "elu"])
    assert {c.sample(rng) for _ in range(300)} == {"relu", "tanh", "elu"}
    o = Ordinal("size", [8, 16, 32])
    assert {o.sample(rng) for _ in range(300)} == {8, 16, 32}
    assert Constant("k", "x").sample(rng) == "x"


def test_same_seed_same_samples():
    space = SearchSpace(
        [
            Continuous("lr", [1e-4, 1e-1], scale="log"),
            Discrete("n", [1, 100]),
            Choice("act", ["a", "b", "c"]),
        ]
    )
    a = [space.sample(random.Random(42)) for _ in range(3)]
    r1, r2 = random.Random(42), random.Random(42)
    assert [space.sample(r1) for _ in range(50)] == [space.sample(r2) for _ in range(50)]
    assert a[0] == a[1] == a[2]


def test_sample_without_rng_uses_bound_generator():
    p = Continuous("x", [0, 1])
    with bound_rng(random.Random(9)):
        first = [p.sample() for _ in range(3)]
    with bound_rng(random.Random(9)):
        second = [p.sample() for _ in range(3)]
    assert first == second
    assert 0 <= p.sample() <= 1  # outside a block: an unseeded default generator


# -- unit encoding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "param, values",
    [
        (Continuous("x", [-1, 3]), [-1.0, 0.0, 2.5, 3.0]),
        (Continuous("x", [1e-3, 10], scale="log"), [1e-3, 0.1, 10.0]),
        (Discrete("n", [2, 7]), [2, 3, 7]),
        (Discrete("n", [1, 1000], scale="log"), [1, 2, 31, 999, 1000]),
        (Choice("c", ["a", "b", "c"]), ["a", "b", "c"]),
        (Ordinal("o", [1, 2, 4, 8]), [1, 4, 8]),
    ],
)
def test_unit_round_trip(param, values):
    for v in values:
        u = param.to_unit(v)
        assert 0.0 <= u <= 1.0
        back = param.from_unit(u)
        assert back == pytest.approx(v) if isinstance(v, float) else back == v


def test_unit_log_scale_is_log_space():
    p = Continuous("lr", [1e-4, 1.0], scale="log")
    assert p.to_unit(1e-2) == pytest.approx(0.5)
    assert p.from_unit(0.25) == pytest.approx(1e-3)
    assert p.from_unit(-1) == 1e-4 and p.from_unit(2) == 1.0


def test_from_unit_covers_discrete_values():
    p = Discrete("n", [1, 4])
    got = {p.from_unit(i / 100) for i in range(101)}
    assert got == {1, 2, 3, 4}
    assert Constant("k", 3).from_unit(0.9) == 3 and Constant("k", 3).to_unit(3) == 0.5


# -- grid -------------------------------------------------------------------------------------


def test_grid_points_include_endpoints():
    assert Continuous("x", [0, 1]).grid_points(3) == [0.0, 0.5, 1.0]
    assert Continuous("x", [1, 2]).grid_points(2) == [1.0, 2.0]
    log = Continuous("lr", [1e-3, 1e-1], scale="log").grid_points(3)
    assert log[0] == 1e-3 and log[2] == 1e-1 and log[1] == pytest.approx(1e-2)
    assert Continuous("x", [0, 1]).grid_points(1) == [0.0]


def test_discrete_grid_rounded_and_deduplicated():
    assert Discrete("n", [1, 4]).grid_points(2) == [1, 4]
    assert Discrete("n", [1, 5]).grid_points(3) == [1, 3, 5]
    assert Discrete("n", [1, 3]).grid_points(10) == [1, 2, 3]
    assert Discrete("n", [1, 1000], scale="log").grid_points(4) == [1, 10, 100, 1000]


def test_categorical_grid_is_all_values():
    assert Choice("c", ["a", "b", "c"]).grid_points(2) == ["a", "b", "c"]
    assert Ordinal("o", [1, 2]).grid_points(5) == [1, 2]
    assert Constant("k", 1).grid_points(3) == [1]
    with pytest.raises(SpaceError, match="'c'.*num_points"):
        Choice("c", ["a"]).grid_points(0)


def test_space_grid_is_product_in_sherpa_order():
    space = SearchSpace([Choice("b", ["x", "y"]), Discrete("a", [1, 3])])
    grid = space.grid(2)
    # names sorted ('a' then 'b'), the last name varying fastest, as sklearn's ParameterGrid
    assert grid == [
        {"b": "x", "a": 1},
        {"b": "y", "a": 1},
        {"b": "x", "a": 3},
        {"b": "y", "a": 3},
    ]
    assert list(grid[0]) == ["b", "a"]  # keys in definition order


# -- SearchSpace ------------------------------------------------------------------------------


def _space() -> SearchSpace:
    return SearchSpace(
        [
            Continuous("lr", [1e-4, 1e-1], scale="log"),
            Discrete("layers", [1, 4]),
            Choice("act", ["relu", "tanh"]),
            Ordinal("batch", [16, 32, 64]),
            Constant("epochs", 10),
        ]
    )


def test_space_container_protocol():
    space = _space()
    assert len(space) == 5
    assert space.names == ["lr", "layers", "act", "batch", "epochs"]
    assert [p.name for p in space] == space.names
    assert space["act"].range == ["relu", "tanh"]
    assert "lr" in space and "nope" not in space
    with pytest.raises(KeyError, match="nope"):
        space["nope"]
    assert space.parameters is not space.parameters  # a copy


def test_space_rejects_duplicates_and_non_parameters():
    with pytest.raises(SpaceError, match="'x' is used twice"):
        SearchSpace([Continuous("x", [0, 1]), Choice("x", [1])])
    with pytest.raises(SpaceError, match="item 1.*not a Parameter"):
        SearchSpace([Continuous("x", [0, 1]), {"name": "y"}])
    with pytest.raises(SpaceError, match="list of parameters"):
        SearchSpace("x")


def test_space_sample_encode_decode_contains():
    space = _space()
    rng = random.Random(0)
    for _ in range(100):
        params = space.sample(rng)
        assert list(params) == space.names
        assert space.contains(params)
        unit = space.encode(params)
        assert len(unit) == 5 and all(0 <= u <= 1 for u in unit)
        back = space.decode(unit)
        assert back["lr"] == pytest.approx(params["lr"])
        assert {k: v for k, v in back.items() if k != "lr"} == {
            k: v for k, v in params.items() if k != "lr"
        }
    with pytest.raises(SpaceError, match="5 coordinates"):
        space.decode([0.5])


def test_space_contains_rejects_bad_values():
    space = _space()
    good = {"lr": 0.01, "layers": 4, "act": "relu", "batch": 32, "epochs": 10}
    assert space.contains(good)
    assert space.contains({**good, "resource": 3})  # SHERPA extra key
    assert not space.contains({**good, "lr": 1.0})
    assert not space.contains({**good, "layers": 5})
    assert not space.contains({**good, "layers": 2.5})
    assert not space.contains({**good, "act": "elu"})
    assert not space.contains({**good, "epochs": 11})
    assert not space.contains({**good, "color": "red"})
    assert not space.contains({k: v for k, v in good.items() if k != "act"})


def test_check_params():
    space = _space()
    good = {"lr": 0.01, "layers": 4, "act": "relu", "batch": 32, "epochs": 10}
    space.check_params(good)
    space.check_params({**good, "load_from": "", "save_to": "3", "generation": 1, "rung": 0})
    with pytest.raises(ObservationError, match="unknown parameter name.*'colour'"):
        space.check_params({**good, "colour": 1})
    with pytest.raises(ObservationError, match="missing parameter.*'act'"):
        space.check_params({k: v for k, v in good.items() if k != "act"})
    with pytest.raises(ObservationError, match="dict"):
        space.check_params([1, 2])


def test_import_stays_light():
    import ridgeline.space

    src = str(Path(ridgeline.space.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = "import sys, ridgeline.space; print(any(m in sys.modules for m in ('numpy','pandas')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.strip() == "False"
