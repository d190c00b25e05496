"""YAML experiment configs: Determined's format, defaults, grid axes, overrides, clear errors."""

from __future__ import annotations

import json
import random
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from ridgeline.config import (
    CheckpointStorageConfig,
    ConfigWarning,
    DeprecatedConfigWarning,
    ExperimentConfig,
    InvalidConfig,
    describe_search,
    grid_points,
    load_config,
    nest_params,
    parse_config,
)
from ridgeline.errors import ConfigError
from ridgeline.space import Choice, Constant, Continuous, Discrete

# Determined's Core-API tutorial (stage 3) and the MNIST adaptive example, as users write them.
CONST_YAML = """
name: core-api-stage-3
entrypoint: python3 3_hpsearch.py
max_restarts: 0
hyperparameters:
  increment_by: 1
searcher:
  name: single
  metric: x
  smaller_is_better: true
  max_length: 100
"""

ADAPTIVE_YAML = """
name: mnist_pytorch_adaptive_search
description: MNIST with ASHA
hyperparameters:
  global_batch_size: 64
  learning_rate:
    type: double
    minval: .0001
    maxval: 1.0
  n_filters1:
    type: int
    minval: 8
    maxval: 64
  dropout1:
    type: double
    minval: .2
    maxval: .8
searcher:
  name: adaptive_asha
  metric: validation_loss
  smaller_is_better: true
  max_trials: 16
  max_length:
    batches: 937
records_per_epoch: 60000
min_validation_period:
  batches: 100
entrypoint: python3 train.py
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def base(**searcher: Any) -> dict[str, Any]:
    """A minimal valid mapping; keyword arguments go into the searcher section."""
    return {
        "entrypoint": "python3 train.py",
        "searcher": {"name": "random", "metric": "loss", "max_trials": 4, **searcher},
    }


def problems(data: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(InvalidConfig) as info:
        parse_config(data, **kwargs)
    return info.value.problems


def only_problem(data: Any) -> str:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


# -- files that parse ------------------------------------------------------------------------


def test_tutorial_const_yaml(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONST_YAML))
    assert isinstance(config, ExperimentConfig)
    assert config.name == "core-api-stage-3"
    assert config.entrypoint == ["python3", "3_hpsearch.py"]
    assert config.max_restarts == 0
    assert config.hyperparameters == {"increment_by": 1}
    assert [type(p) for p in config.space] == [Constant]
    s = config.searcher
    assert (s.name, s.metric, s.smaller_is_better) == ("single", "x", True)
    assert (s.max_length, s.length_unit, s.max_trials, s.max_concurrent_trials) == (
        100,
        None,
        1,
        1,
    )
    assert config.checkpoint_storage is None and config.slots_per_trial == 1
    assert config.experiment_seed is None and config.data == {}
    assert config.environment_variables == {}


def test_adaptive_yaml_with_defaults(tmp_path: Path) -> None:
    with pytest.warns(DeprecatedConfigWarning, match="records_per_epoch, min_validation_period"):
        config = load_config(write(tmp_path, ADAPTIVE_YAML))
    assert config.description == "MNIST with ASHA"
    assert config.entrypoint == ["python3", "train.py"]
    s = config.searcher
    assert (s.name, s.max_trials, s.max_length, s.length_unit) == (
        "adaptive_asha",
        16,
        937,
        "batches",
    )
    assert s.max_concurrent_trials == 16
    assert s.options == {
        "mode": "standard",
        "divisor": 4,
        "max_rungs": 5,
        "bracket_rungs": [],
        "stop_once": False,
    }
    assert config.space["learning_rate"].range == [0.0001, 1.0]
    assert isinstance(config.space["n_filters1"], Discrete)
    assert config.raw["searcher"]["mode"] == "standard"
    assert any(line.startswith("Brackets:") for line in describe_search(config))


def test_asha_options_and_0_38_budget() -> None:
    with pytest.warns(DeprecatedConfigWarning, match="stop_once is deprecated in Determined"):
        config = _asha_0_38()
    s = config.searcher
    assert s.max_length is None and s.max_concurrent_trials == 0
    assert s.options["time_metric"] == "batches" and s.options["max_time"] == 1000
    assert s.options["mode"] == "aggressive" and s.options["divisor"] == 3.5
    assert s.options["bracket_rungs"] == [3, 2] and s.options["stop_once"] is True

    halving = parse_config(base(name="async_halving", num_rungs=3, max_length={"epochs": 9}))
    assert halving.searcher.options == {"divisor": 4, "stop_once": False, "num_rungs": 3}


def _asha_0_38() -> Any:
    return parse_config(
        {
            "entrypoint": ["python3", "train.py"],
            "searcher": {
                "name": "adaptive_asha",
                "metric": "loss",
                "max_trials": 10,
                "time_metric": "batches",
                "max_time": 1000,
                "mode": "aggressive",
                "divisor": 3.5,
                "bracket_rungs": [3, 2],
                "stop_once": True,
                "max_concurrent_trials": 0,
            },
        }
    )


def test_asha_validation() -> None:
    found = problems(
        base(
            name="adaptive_asha",
            mode="fast",
            divisor=1,
            max_rungs=0,
            bracket_rungs=[2, "x"],
            max_length=10,
        )
    )
    text = "\n".join(found)
    assert "searcher.mode: must be one of standard, aggressive, conservative (got 'fast')" in text
    assert "searcher.divisor: must be a number > 1 (got 1)" in text
    assert "searcher.max_rungs: must be an integer >= 1 (got 0)" in text
    assert "searcher.bracket_rungs[1]: must be an integer >= 1 (got 'x')" in text
    assert "searcher.num_rungs: num_rungs is required" in only_problem(
        base(name="async_halving", max_length={"batches": 10})
    )
    assert "searcher.max_length: max_length is required" in only_problem(base(name="adaptive_asha"))
    assert "searcher.max_time: max_time is required" in only_problem(
        base(name="adaptive_asha", time_metric="batches")
    )


def test_other_searcher_names() -> None:
    tpe = parse_config(base(name="tpe", num_initial=5))
    assert tpe.searcher.options == {"num_initial": 5}
    assert "did you mean 'num_initial'" in only_problem(base(name="tpe", num_initials=5))
    gp = parse_config(base(name="bayesian", acquisition="lcb"))
    assert gp.searcher.options == {"acquisition": "lcb"}
    assert only_problem(base(name="bayesian", acquisition="ucb")).startswith(
        "searcher.acquisition: must be one of ei, pi, lcb"
    )
    assert parse_config(base(name="auto")).searcher.name == "auto"
    grid = parse_config({"entrypoint": "python3 t.py", "searcher": {"name": "grid", "metric": "m"}})
    assert grid.searcher.max_trials is None and grid.searcher.max_concurrent_trials == 16


def test_entrypoint_forms() -> None:
    quoted = parse_config({**base(), "entrypoint": "python3 train.py --name 'a b'"})
    assert quoted.entrypoint == ["python3", "train.py", "--name", "a b"]
    listed = parse_config({**base(), "entrypoint": ["python3", "train.py"]})
    assert listed.entrypoint == ["python3", "train.py"]
    message = only_problem({**base(), "entrypoint": "model_def:MNistTrial"})
    assert message.startswith("entrypoint: 'model_def:MNistTrial' names a Trial-API class")
    assert "python3 train.py" in message
    assert "entrypoint[1]: must be a string (got 3)" in only_problem(
        {**base(), "entrypoint": ["python3", 3]}
    )


def test_yaml_1_2_numbers_and_strings(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            entrypoint: python3 t.py
            data: {released: 2024-11-22, tiny: 1e-4}
            hyperparameters:
              lr: {type: double, minval: 1e-5, maxval: 1E-1}
            searcher: {name: random, metric: m, max_trials: 1e1}
            """,
        )
    )
    assert config.space["lr"].range == [1e-5, 0.1]
    assert config.data == {"released": "2024-11-22", "tiny": 1e-4}
    assert config.searcher.max_trials == 10
    json.dumps(config.raw)


# -- hyperparameters -------------------------------------------------------------------------


def test_nested_groups_flatten_and_nest_back() -> None:
    hps = {
        "optimizer": {
            "lr": {"type": "log", "minval": -4, "maxval": -1, "base": 10},
            "betas": {"b1": 0.9, "b2": {"type": "categorical", "vals": [0.99, 0.999]}},
        },
        "layers": [64, 64],
        "extra": {"type": "const", "val": {"a": 1}},
        "empty": {},
        "nothing": None,
    }
    config = parse_config({**base(), "hyperparameters": hps})
    assert config.space.names == [
        "optimizer.lr",
        "optimizer.betas.b1",
        "optimizer.betas.b2",
        "layers",
        "extra",
        "empty",
        "nothing",
    ]
    assert isinstance(config.space["optimizer.betas.b2"], Choice)
    assert config.space["extra"].sample() == {"a": 1}
    params = config.space.sample(random.Random(1))
    nested = nest_params(params)
    assert set(nested) == {"optimizer", "layers", "extra", "empty", "nothing"}
    assert set(nested["optimizer"]) == {"lr", "betas"}
    assert nested["optimizer"]["betas"]["b1"] == 0.9
    assert nested["layers"] == [64, 64] and nested["extra"] == {"a": 1} and nested["empty"] == {}
    assert nested["nothing"] is None
    # the mapping as written, log base filled in
    assert config.hyperparameters["optimizer"]["lr"]["base"] == 10
    assert config.hyperparameters["layers"] == [64, 64]


def test_nest_params() -> None:
    assert nest_params({"a.b": 1, "c": 2, "a.d.e": 3}) == {"a": {"b": 1, "d": {"e": 3}}, "c": 2}
    assert nest_params({"x": {"k": 1}}) == {"x": {"k": 1}}
    with pytest.raises(ConfigError, match="'a.b'"):
        nest_params({"a": 1, "a.b": 2})
    with pytest.raises(ConfigError):
        nest_params({"a": {"k": 1}, "a.b": 2})


def test_sampling_bounds() -> None:
    config = parse_config(
        {
            **base(),
            "hyperparameters": {
                "n": {"type": "int", "minval": 1, "maxval": 3},
                "d": {"type": "double", "minval": -1, "maxval": 1},
                "lr": {"type": "log", "minval": -4, "maxval": -2, "base": 10},
                "b2": {"type": "log", "base": 2, "minval": 1, "maxval": 3},
                "c": {"type": "categorical", "vals": [[1, 2], {"k": "v"}, None]},
            },
        }
    )
    space = config.space
    assert isinstance(space["n"], Discrete) and space["n"].range == [1, 3]
    assert isinstance(space["lr"], Continuous) and space["lr"].scale == "log"
    assert space["lr"].range == pytest.approx([1e-4, 1e-2])
    assert space["b2"].range == [2.0, 8.0]
    rng = random.Random(7)
    samples = [space.sample(rng) for _ in range(600)]
    assert {s["n"] for s in samples} == {1, 2, 3}  # maxval is inclusive
    assert all(-1 <= s["d"] <= 1 for s in samples)
    assert all(1e-4 <= s["lr"] <= 1e-2 for s in samples)
    assert min(s["lr"] for s in samples) < 1e-3 < max(s["lr"] for s in samples)
    assert all(2 <= s["b2"] <= 8 for s in samples)
    assert {json.dumps(s["c"]) for s in samples} == {"[1, 2]", '{"k": "v"}', "null"}


def test_hyperparameter_errors() -> None:
    found = problems(
        {
            **base(),
            "hyperparameters": {
                "a": {"type": "float", "minval": 0, "maxval": 1},
                "b": {"type": "int", "minval": 1.5, "maxval": 3},
                "c": {"type": "double", "minval": 2, "maxval": 1},
                "d": {"type": "log", "minval": -3, "base": 10},
                "e": {"type": "categorical", "vals": []},
                "f": {"type": "categorical", "vals": [1, 1]},
                "g": {"type": "const"},
                "h": {"type": "int", "min": 1, "maxval": 3, "minval": 0},
                "i": {"type": "log", "minval": 1, "maxval": 400, "base": 10},
                "j": {"type": "log", "minval": 1, "maxval": 2},
                "k.l": 1,
                "m": {"type": "double", "minval": "0.1", "maxval": 1},
            },
        }
    )
    text = "\n".join(found)
    assert "hyperparameters.a.type: must be one of const, int, double, log, categorical " in text
    assert "did you mean 'double'?" in text
    assert "hyperparameters.b.minval: must be an integer (got 1.5)" in text
    assert "hyperparameters.c: minval must be less than maxval (got minval 2, maxval 1)" in text
    assert "hyperparameters.d.maxval: maxval is required" in text
    assert "hyperparameters.e.vals: must be a non-empty list of values (got [])" in text
    assert "hyperparameters.f.vals: lists a value more than once" in text
    assert "hyperparameters.g.val: val is required" in text
    assert "hyperparameters.h.min: unknown key for an int hyperparameter; did you mean" in text
    assert "hyperparameters.i: base**minval .. base**maxval is not a usable range" in text
    assert "hyperparameters.j.base: base is required (got none)" in text  # as Determined
    assert "hyperparameters.k.l: hyperparameter names must be non-empty and contain no '.'" in text
    assert "hyperparameters.m.minval: must be a finite number (got '0.1')" in text
    assert len(found) == 12


# -- grid ------------------------------------------------------------------------------------


def grid_config(hps: dict[str, Any], **searcher: Any) -> ExperimentConfig:
    return parse_config(
        {
            "entrypoint": "python3 t.py",
            "hyperparameters": hps,
            "searcher": {"name": "grid", "metric": "m", "max_length": 5, **searcher},
        }
    )


def axis(hp: dict[str, Any]) -> list[Any]:
    return [point["x"] for point in reversed(grid_points(grid_config({"x": hp})))]


def test_grid_axes() -> None:
    assert axis({"type": "int", "minval": 1, "maxval": 3, "count": 10}) == [1, 2, 3]
    assert axis({"type": "int", "minval": 0, "maxval": 10, "count": 3}) == [0, 5, 10]
    assert axis({"type": "int", "minval": 1, "maxval": 4, "count": 3}) == [1, 3, 4]  # 2.5 -> 3
    assert axis({"type": "int", "minval": 1, "maxval": 4, "count": 1}) == [3]  # rounded midpoint
    assert axis({"type": "int", "minval": -4, "maxval": -1, "count": 1}) == [-3]  # away from 0
    assert axis({"type": "double", "minval": 0, "maxval": 1, "count": 3}) == [0.0, 0.5, 1.0]
    assert axis({"type": "double", "minval": 0, "maxval": 1, "count": 1}) == [0.5]
    assert axis(
        {"type": "log", "base": 10, "minval": -3, "maxval": -1, "count": 3}
    ) == pytest.approx([1e-3, 1e-2, 1e-1])
    assert axis({"type": "log", "base": 2, "minval": 0, "maxval": 4, "count": 1}) == [4.0]
    assert axis({"type": "categorical", "vals": ["a", [1], {"k": 2}]}) == ["a", [1], {"k": 2}]
    assert axis({"type": "const", "val": 7}) == [7]
    assert axis(3) == [3]


def test_grid_points_product_and_order() -> None:
    config = grid_config(
        {
            "opt": {"name": {"type": "categorical", "vals": ["adam", "sgd"]}, "beta": 0.9},
            "bs": {"type": "int", "minval": 16, "maxval": 64, "count": 3},
        }
    )
    points = grid_points(config)
    assert len(points) == 6
    assert all(list(p) == ["opt.name", "opt.beta", "bs"] for p in points)
    # Determined: product over sorted names (first slowest), popped from the end
    assert [(p["bs"], p["opt.name"]) for p in points] == [
        (64, "sgd"),
        (64, "adam"),
        (40, "sgd"),
        (40, "adam"),
        (16, "sgd"),
        (16, "adam"),
    ]
    assert nest_params(points[0]) == {"opt": {"name": "sgd", "beta": 0.9}, "bs": 64}
    lines = describe_search(config)
    assert "Grid points: 6" in lines
    assert any("trained to 5 units" in line for line in lines)
    assert grid_points(grid_config({})) == []  # no axes, no point (Determined's grid)
    assert "Grid points: 0" in describe_search(grid_config({}))


def test_grid_needs_counts() -> None:
    message = only_problem(
        {
            "entrypoint": "python3 t.py",
            "hyperparameters": {"opt": {"lr": {"type": "double", "minval": 0, "maxval": 1}}},
            "searcher": {"name": "grid", "metric": "m"},
        }
    )
    assert message.startswith("hyperparameters.opt.lr.count: grid search needs a count")
    assert "'opt.lr'" in message
    # random search does not need counts, but its config cannot build a grid
    config = parse_config(
        {**base(), "hyperparameters": {"lr": {"type": "double", "minval": 0, "maxval": 1}}}
    )
    with pytest.raises(ConfigError, match="hyperparameters.lr.count"):
        grid_points(config)


def test_grid_limits_and_ignored_max_trials() -> None:
    huge = {f"p{i}": {"type": "int", "minval": 0, "maxval": 99, "count": 100} for i in range(4)}
    assert "the grid has 100000000 points" in only_problem(
        {"entrypoint": "x", "hyperparameters": huge, "searcher": {"name": "grid", "metric": "m"}}
    )
    with pytest.warns(ConfigWarning, match="max_trials is ignored by the grid searcher"):
        grid_config({"x": 1}, max_trials=3)


# -- searcher fields -------------------------------------------------------------------------


def test_searcher_defaults_and_lengths() -> None:
    s = parse_config(base(max_length={"epochs": 3}, smaller_is_better=False)).searcher
    assert (s.max_length, s.length_unit, s.smaller_is_better) == (3, "epochs", False)
    assert s.max_concurrent_trials == 16 and s.max_trials == 4
    assert parse_config(base(max_concurrent_trials=0)).searcher.max_concurrent_trials == 0
    assert parse_config(base(max_length=None)).searcher.max_length is None
    with pytest.warns(DeprecatedConfigWarning, match="searcher.unit"):
        s = parse_config(base(max_length=20, unit="records")).searcher
    assert (s.max_length, s.length_unit) == (20, "records")
    s = parse_config(base(source_checkpoint_uuid="abc")).searcher
    assert s.source_checkpoint_uuid == "abc" and s.source_trial_id is None


def test_searcher_errors() -> None:
    assert only_problem(base(max_trials="ten")) == (
        "searcher.max_trials: must be an integer >= 1 (got 'ten'); write the number without quotes"
    )
    assert only_problem(base(max_trials=None)).startswith(
        "searcher.max_trials: max_trials is required"
    )
    assert only_problem(base(metric=None)).startswith("searcher.metric: metric is required")
    assert only_problem(base(metric=3)) == "searcher.metric: must be a non-empty string (got 3)"
    assert only_problem(base(smaller_is_better="yes")).startswith(
        "searcher.smaller_is_better: must be true or false"
    )
    assert "searcher.max_concurrent_trials: must be an integer >= 0 (got -1)" in only_problem(
        base(max_concurrent_trials=-1)
    )
    both = only_problem(base(source_trial_id=3, source_checkpoint_uuid="u"))
    assert "give at most one warm-start source" in both
    single = only_problem(
        {"entrypoint": "x", "searcher": {"name": "single", "metric": "m", "max_trials": 3}}
    )
    assert single.startswith("searcher.max_trials: is not a field of the single searcher")
    assert "did you mean 'random'?" in only_problem(base(name="randm"))
    assert "searcher: a searcher section is required" in only_problem({"entrypoint": "x"})


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (
            {"epoch": 5},
            "searcher.max_length.epoch: unknown length unit (got 'epoch'); did you mean 'epochs'?",
        ),
        (
            {"epochs": 5, "batches": 2},
            "searcher.max_length: must be a positive integer or a one-key",
        ),
        ({"batches": 0}, "searcher.max_length.batches: must be an integer >= 1 (got 0)"),
        (0, "searcher.max_length: must be a positive integer or a one-key mapping"),
        ("10", "searcher.max_length: must be a positive integer"),
    ],
)
def test_bad_max_length(length: Any, expected: str) -> None:
    assert only_problem(base(max_length=length)).startswith(expected)


@pytest.mark.parametrize("name", ["adaptive", "adaptive_simple", "custom"])
def test_removed_searchers(name: str) -> None:
    message = only_problem({"entrypoint": "x", "searcher": {"name": name, "metric": "m"}})
    assert f"searcher.name: the {name!r} searcher has been removed" in message
    assert "adaptive_asha" in message and "random" in message


def test_pbt_and_halving_fields_are_checked() -> None:
    found = problems({"entrypoint": "x", "searcher": {"name": "pbt", "metric": "m"}})
    assert [f.split(":")[0] for f in found] == [
        "searcher.population_size",
        "searcher.num_rounds",
        "searcher.length_per_round",
    ]
    found = " | ".join(
        problems(
            {
                "entrypoint": "x",
                "searcher": {
                    "name": "pbt",
                    "metric": "m",
                    "population_size": 4,
                    "num_rounds": 2,
                    "length_per_round": {"epochs": 2},
                    "replace_function": {"truncate_fraction": 0.7, "trunc": 1},
                },
            }
        )
    )
    assert "searcher.replace_function.truncate_fraction" in found
    assert "searcher.replace_function.trunc: unknown key" in found
    message = only_problem(
        {
            "entrypoint": "x",
            "searcher": {"name": "sync_halving", "metric": "m", "max_trials": 4, "max_length": 8},
        }
    )
    assert "searcher.num_rungs" in message


# -- other sections --------------------------------------------------------------------------


def test_checkpoint_storage_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        entrypoint: python3 t.py
        searcher: {name: single, metric: m}
        checkpoint_storage:
          type: shared_fs
          host_path: ckpt
          storage_path: runs/a
          save_trial_best: 2
        """,
        name="sub/config.yaml",
    )
    config = load_config(path)
    storage = config.checkpoint_storage
    assert storage == CheckpointStorageConfig(
        path=str(tmp_path / "sub" / "ckpt" / "runs" / "a"),
        save_experiment_best=0,
        save_trial_best=2,
        save_trial_latest=1,
        type="shared_fs",
    )
    assert config.raw["checkpoint_storage"]["host_path"] == str(tmp_path / "sub" / "ckpt")
    # stored raw re-parses to the same place from anywhere
    assert parse_config(config.raw, base_dir="/elsewhere").checkpoint_storage == storage

    directory = parse_config(
        {**base(), "checkpoint_storage": {"type": "directory", "container_path": "out"}},
        base_dir=str(tmp_path),
    )
    assert directory.checkpoint_storage is not None
    assert directory.checkpoint_storage.path == str(tmp_path / "out")
    absolute = parse_config(
        {**base(), "checkpoint_storage": {"type": "shared_fs", "host_path": str(tmp_path)}}
    )
    assert absolute.checkpoint_storage is not None
    assert absolute.checkpoint_storage.path == str(tmp_path)


def test_checkpoint_storage_errors() -> None:
    s3 = only_problem({**base(), "checkpoint_storage": {"type": "s3", "bucket": "b"}})
    assert s3.startswith("checkpoint_storage.type: 's3' storage is not available in ridgeline")
    assert "shared_fs" in s3 and "directory" in s3
    for kind in ("gcs", "azure"):
        assert "not available" in only_problem({**base(), "checkpoint_storage": {"type": kind}})
    escape = only_problem(
        {
            **base(),
            "checkpoint_storage": {"type": "shared_fs", "host_path": "/a", "storage_path": "/b"},
        }
    )
    assert "storage_path: must be a relative directory or a subdirectory of host_path" in escape
    assert "host_path is required" in only_problem(
        {**base(), "checkpoint_storage": {"type": "shared_fs"}}
    )
    assert "save_trial_latest: must be an integer >= 0" in only_problem(
        {
            **base(),
            "checkpoint_storage": {
                "type": "directory",
                "container_path": "/c",
                "save_trial_latest": -1,
            },
        }
    )


def test_resources_seed_data_environment() -> None:
    config = parse_config(
        {
            **base(),
            "resources": {"slots_per_trial": 0},
            "reproducibility": {"experiment_seed": 42},
            "data": {"url": "https://example.org/mnist"},
            "environment": {"environment_variables": {"cpu": ["A=1", "B=x=y"], "cuda": ["A=2"]}},
        }
    )
    assert config.slots_per_trial == 0 and config.experiment_seed == 42
    assert config.data == {"url": "https://example.org/mnist"}
    assert config.environment_for("cpu") == {"A": "1", "B": "x=y"}
    assert config.environment_for("cuda") == {"A": "2"}
    old_name = parse_config(
        {**base(), "environment": {"environment_variables": {"cpu": ["A=1"], "gpu": ["A=2"]}}}
    )
    assert old_name.environment_for("cuda") == {"A": "2"}  # gpu: Determined's old name
    listed = parse_config({**base(), "environment": {"environment_variables": ["K=V", "E="]}})
    assert listed.environment_for("cpu") == listed.environment_for("cuda") == {"K": "V", "E": ""}

    found = problems(
        {
            **base(),
            "resources": {"slots_per_trial": -1},
            "reproducibility": {"experiment_seed": -5},
            "max_restarts": "5",
            "environment": {"environment_variables": {"cpus": ["A=1"]}},
        }
    )
    text = "\n".join(found)
    assert "resources.slots_per_trial: must be an integer >= 0 (got -1)" in text
    assert "reproducibility.experiment_seed: must be an integer >= 0 (got -5)" in text
    assert "max_restarts: must be an integer >= 0 (got '5')" in text
    assert "environment.environment_variables.cpus: unknown key; did you mean 'cpu'?" in text


# -- overrides -------------------------------------------------------------------------------


def test_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        entrypoint: python3 t.py
        hyperparameters:
          lr: {type: double, minval: 0.001, maxval: 1.0}
        searcher: {name: random, metric: m, max_trials: 2}
        """,
    )
    config = load_config(
        path,
        [
            "searcher.max_trials=5",
            "hyperparameters.lr.maxval=0.1",
            "searcher.max_length={epochs: 3}",
            "reproducibility.experiment_seed=9",
            "name=tuned run",
            "hyperparameters.opt.name=adam",
        ],
    )
    assert config.searcher.max_trials == 5
    assert config.space["lr"].range == [0.001, 0.1]
    assert (config.searcher.max_length, config.searcher.length_unit) == (3, "epochs")
    assert config.experiment_seed == 9 and config.name == "tuned run"
    assert nest_params(config.space.sample(random.Random(0)))["opt"] == {"name": "adam"}
    assert config.raw["searcher"]["max_trials"] == 5

    with pytest.raises(InvalidConfig) as info:
        load_config(path, ["searcher.max_trials=zero", "searcher", "hyperparameters.lr.type.x=1"])
    text = str(info.value)
    assert "--config: searcher.max_trials: must be an integer >= 1 (got 'zero')" in text
    assert "an override is KEY=VALUE (got 'searcher')" in text
    assert (
        "hyperparameters.lr.type: --config hyperparameters.lr.type.x=... sets a key inside" in text
    )


# -- errors: the file, many at once, safety ---------------------------------------------------


def test_unknown_keys_suggest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        entrypoint: python3 t.py
        max_restart: 2
        searcher: {name: random, metrc: m, max_trials: 2}
        resources: {slots_per_trail: 2}
        zzz: 1
        """,
    )
    with pytest.raises(InvalidConfig) as info:
        load_config(path)
    found = info.value.problems
    assert "line 3: max_restart: unknown key; did you mean 'max_restarts'?" in found
    assert (
        "line 4: searcher.metrc: unknown key for the random searcher; did you mean 'metric'?"
        in found
    )
    assert (
        "line 5: resources.slots_per_trail: unknown key; did you mean 'slots_per_trial'?" in found
    )
    assert any(p.startswith("line 6: zzz: unknown key; valid keys here:") for p in found)


def test_many_problems_in_one_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        hyperparameters:
          lr: {type: double, minval: 1, maxval: 0}
        searcher:
          name: random
          max_trials: ten
          max_length: {epoch: 5}
        checkpoint_storage: {type: s3, bucket: b}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: 6 problems in the experiment config:")
    for expected in [
        "entrypoint: entrypoint is required",
        "line 3: hyperparameters.lr: minval must be less than maxval",
        "line 4: searcher.metric: metric is required",
        "line 6: searcher.max_trials: must be an integer >= 1 (got 'ten')",
        "line 7: searcher.max_length.epoch: unknown length unit",
        "line 8: checkpoint_storage.type: 's3' storage is not available",
    ]:
        assert expected in message
    # file order
    assert message.index("line 3:") < message.index("line 6:") < message.index("line 8:")


def test_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "entrypoint: python3 t.py\nsearcher:\n  name: random\n metric: x\n")
    with pytest.raises(InvalidConfig, match=r"line 4, column 2: invalid YAML"):
        load_config(path)
    flow = write(tmp_path, "entrypoint: x\nsearcher: {name: random\n", "flow.yaml")
    with pytest.raises(InvalidConfig, match="starts on line 2"):
        load_config(flow)


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(
        tmp_path,
        f"""
        entrypoint: !!python/object/apply:os.system ["touch {marker}"]
        searcher: {{name: single, metric: m}}
        """,
    )
    with pytest.raises(InvalidConfig, match=r"!!python/object/apply:os.system is not allowed"):
        load_config(path)
    assert not marker.exists()
    binary = write(tmp_path, "entrypoint: !!binary aGk=\nsearcher: {}\n", "binary.yaml")
    with pytest.raises(InvalidConfig, match="plain YAML/JSON data"):
        load_config(binary)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="the file is empty"):
        load_config(write(tmp_path, "# nothing\n"))
    with pytest.raises(InvalidConfig, match="the top level must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    dup = write(tmp_path, "entrypoint: a\nsearcher: {name: single, metric: m}\nentrypoint: b\n")
    with pytest.raises(InvalidConfig, match="line 3: key 'entrypoint' appears twice"):
        load_config(dup)
    loop = write(tmp_path, "entrypoint: x\nsearcher: {name: single, metric: m}\ndata: &a [*a]\n")
    with pytest.raises(InvalidConfig, match="refers to itself"):
        load_config(loop)
    with pytest.raises(InvalidConfig, match="keys must be strings"):
        parse_config({**base(), "data": {1: "a"}})
    with pytest.raises(InvalidConfig, match="plain YAML/JSON data"):
        parse_config({**base(), "data": object()})


def test_deprecated_and_ignored_keys_warn(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        entrypoint: python3 t.py
        searcher: {name: single, metric: m}
        scheduling_unit: 10
        perform_initial_validation: true
        optimizations: {aggregation_frequency: 2}
        labels: [a]
        bind_mounts: []
        environment: {image: pytorch, environment_variables: [A=1]}
        resources: {priority: 3, resource_pool: gpu, slots_per_trial: 2}
        """,
    )
    with pytest.warns(Warning) as record:
        config = load_config(path)
    (message,) = [str(w.message) for w in record if issubclass(w.category, ConfigWarning)]
    assert record[0].category is DeprecatedConfigWarning  # one warning names every such field
    assert "not acted on" in message
    for key in (
        "scheduling_unit",
        "perform_initial_validation",
        "optimizations.aggregation_frequency",
        "labels",
        "bind_mounts",
        "environment.image",
        "resources.priority",
    ):
        assert key in message
    assert issubclass(DeprecatedConfigWarning, UserWarning)
    assert config.slots_per_trial == 2 and config.environment_for("cpu") == {"A": "1"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(path, warn=False)
        parse_config(config.raw, warn=False)


def test_raw_round_trips_through_json(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ADAPTIVE_YAML), ["searcher.max_trials=8"], warn=False)
    stored = json.loads(json.dumps(config.raw))
    again = parse_config(stored, "stored", "/elsewhere", warn=False)
    assert again == config
    assert again.space.names == config.space.names
    assert "max_concurrent_trials" not in stored["searcher"]  # not set: the machine may bound it
    assert again.searcher.max_concurrent_trials == 16 and not again.searcher.concurrency_given
    assert stored["name"] == "mnist_pytorch_adaptive_search"
    unnamed = load_config(
        write(tmp_path, CONST_YAML.replace("name: core-api", "description: core-api"), "x.yaml")
    )
    assert unnamed.name == "x"
    assert parse_config(base()).name == "experiment"


def test_python_data_is_copied() -> None:
    data = base(max_length={"epochs": 2})
    data["hyperparameters"] = {"c": {"type": "categorical", "vals": (1, 2)}}
    config = parse_config(data)
    assert config.space["c"].range == [1, 2]
    assert data["searcher"] == {
        "name": "random",
        "metric": "loss",
        "max_trials": 4,
        "max_length": {"epochs": 2},
    }


def test_describe_search() -> None:
    single = describe_search(
        parse_config(
            {
                "entrypoint": "x",
                "searcher": {"name": "single", "metric": "m", "max_length": {"batches": 1}},
            }
        )
    )
    assert single == [
        "Searcher: single, optimizing 'm' (smaller is better)",
        "Trials: 1, trained to 1 batch",
        "Concurrency: 1",
    ]
    rand = describe_search(parse_config(base(max_concurrent_trials=0, smaller_is_better=False)))
    assert rand[0] == "Searcher: random, optimizing 'loss' (larger is better)"
    assert rand[1].startswith("Trials: 4 random configurations, each trained for as long as")
    assert rand[2] == "Concurrency: no limit (max_concurrent_trials: 0)"
