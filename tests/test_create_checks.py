"""Checks made when an experiment is created, every problem reported in one pass: the
entrypoint's script, grid sizes (by arithmetic, nothing built) and hyperparameter sizes."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

import ridgeline as sherpa
from ridgeline.config import InvalidConfig, parse_config
from ridgeline.experiment import Experiment
from ridgeline.space import SearchSpace

BIG = "x" * 200_000  # a 200 KB value: more than one environment variable may hold


SHERPA_HUGE_GRID = """
import ridgeline as sherpa
sherpa.Study(
    [sherpa.Continuous("x", [0, 1]), sherpa.Choice("c", ["a", "b"])],
    sherpa.algorithms.GridSearch(num_grid_points=10**9),
    True,
    disable_dashboard=True,
)
"""


def cap_memory() -> None:
    """A grid built in memory fails fast in a capped process instead of eating the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The CLI, with its memory capped."""
    return subprocess.run(
        [sys.executable, "-m", "ridgeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap_memory,
        env=env,
    )


def config(tmp_path: Path, entrypoint: str, hyperparameters: dict, searcher: str = "grid") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        json.dumps(
            {
                "entrypoint": entrypoint,
                "hyperparameters": hyperparameters,
                "searcher": {"name": searcher, "metric": "loss", "max_length": 1},
            }
        )
    )
    return path


def test_every_problem_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(tmp_path / "data" / "store.db"))
    (tmp_path / "train.py").write_text("print('hi')\n")
    cfg = config(
        tmp_path,
        "python3 trian.py",
        {
            "lr": {"type": "double", "minval": 0, "maxval": 1, "count": 1_000_000_000},
            "blob": BIG,
        },
    )
    result = cli("e", "create", str(cfg), str(tmp_path))
    assert result.returncode == 1
    assert "3 problems" in result.stderr and "Traceback" not in result.stderr
    start = time.monotonic()
    with pytest.raises(InvalidConfig) as info:
        Experiment.from_yaml(cfg, tmp_path)
    assert time.monotonic() - start < 10
    problems = info.value.problems
    assert len(problems) == 3, problems
    text = "\n".join(problems)
    assert "script 'trian.py' not found in the context directory" in text
    assert "the grid has 1000000000 points, more than 100000" in text
    assert "hyperparameters.blob: the value takes 200002 bytes as JSON" in text

    listed = cli("e", "list", "--json")
    assert json.loads(listed.stdout) == []  # nothing was created


def test_preview_sizes_grids_by_arithmetic(tmp_path: Path) -> None:
    huge = config(
        tmp_path,
        "python3 train.py",
        {"lr": {"type": "log", "base": 10, "minval": -5, "maxval": -1, "count": 10**9}},
    )
    result = cli("preview-search", str(huge))
    assert result.returncode == 1, result.stderr
    assert "the grid has 1000000000 points" in result.stderr
    assert "MemoryError" not in result.stderr and "Traceback" not in result.stderr
    small = config(
        tmp_path,
        "python3 train.py",
        {
            "lr": {"type": "double", "minval": 0, "maxval": 1, "count": 3},
            "n": {"type": "int", "minval": 1, "maxval": 2, "count": 1000},  # 2 distinct values
            "opt": {"type": "categorical", "vals": ["sgd", "adam"]},
        },
    )
    assert "Grid points: 12" in cli("preview-search", str(small)).stdout


@pytest.mark.parametrize(
    ("entrypoint", "files", "problem"),
    [
        ("python3 train.py", ["train.py"], None),
        ("python3 -u -X dev train.py --lr 1", ["train.py"], None),
        ("python3 sub/train.py", ["train.py"], "script 'sub/train.py' not found"),
        ("python -m pkg.train", ["pkg/__init__.py", "pkg/train.py"], None),
        ("python -m pkg.trian", ["pkg/__init__.py", "pkg/train.py"], "module 'pkg.trian'"),
        ("python -m json.tool", [], None),  # installed
        ("python -m no_such_module_anywhere", [], "neither in the context directory"),
        ("python3 -c 'print(1)'", [], None),
        ("bash run.sh", ["run.sh"], None),
        ("bash -e run.sh", [], "script 'run.sh' not found"),
        ("sh -c 'python3 gone.py'", [], None),
        ("bash -lc 'python3 gone.py'", [], None),  # -c inside an option group
        ("sh -ec 'python3 gone.py'", [], None),
        ("python -uc 'print(1)'", [], None),
        ("python -um pkg.train", ["pkg/__init__.py", "pkg/train.py"], None),
        ("python -um pkg.trian", ["pkg/__init__.py", "pkg/train.py"], "module 'pkg.trian'"),
        ("python -Wignore train.py", ["train.py"], None),
        ("python -W ignore gone.py", [], "script 'gone.py' not found"),
        ("./run.sh", [], "script './run.sh' not found"),
    ],
)
def test_entrypoint_script_must_be_in_the_context(
    tmp_path: Path, entrypoint: str, files: list[str], problem: str | None
) -> None:
    context = tmp_path / "context"
    for name in files:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text("")
    context.mkdir(exist_ok=True)
    data = {"entrypoint": entrypoint, "searcher": {"name": "single", "metric": "m"}}
    if problem is None:
        parse_config(data, context_dir=context)
        return
    with pytest.raises(InvalidConfig) as info:
        parse_config(data, context_dir=context)
    (message,) = info.value.problems
    assert message.startswith("entrypoint: ") and problem in message
    parse_config(data)  # without a context (preview, a stored config) nothing is looked up


def test_huge_hyperparameter_values_are_refused() -> None:
    data = {
        "entrypoint": "python3 train.py",
        "searcher": {"name": "random", "metric": "m", "max_trials": 2},
        "hyperparameters": {"text": {"type": "categorical", "vals": ["short", BIG]}},
        "data": {"blob": BIG},
    }
    with pytest.raises(InvalidConfig) as info:
        parse_config(data)
    first, second = info.value.problems
    assert first.startswith("hyperparameters.text.vals[1]: the value takes 200002 bytes")
    assert second.startswith("data: takes 200012 bytes as JSON, more than 65536")
    # each value fits, but not all of them together
    together = {f"c{i}": "y" * 15_000 for i in range(5)}
    with pytest.raises(InvalidConfig) as info:
        parse_config({**data, "hyperparameters": {"group": together}, "data": {}})
    (message,) = info.value.problems
    assert "a trial's hyperparameters take up to 75" in message and "group.c" in message
    parse_config({**data, "hyperparameters": {"text": "y" * 10_000}, "data": {}})


def test_sherpa_grid_is_sized_by_arithmetic() -> None:
    space = SearchSpace(
        [
            sherpa.Continuous("x", [0, 1]),
            sherpa.Discrete("n", [1, 3]),
            sherpa.Choice("c", ["a", "b"]),
            sherpa.Constant("k", 1),
        ]
    )
    for points in (1, 2, 3, 5):
        assert space.grid_size(points) == len(space.grid(points))
    run = subprocess.run(
        [sys.executable, "-c", SHERPA_HUGE_GRID],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap_memory,
    )
    assert "SpaceError: the grid has 2000000000 points" in run.stderr
    assert "MemoryError" not in run.stderr


def test_grid_limit_error_names_the_axes() -> None:
    text = textwrap.dedent(
        """
        entrypoint: python3 train.py
        hyperparameters:
          a: {type: int, minval: 0, maxval: 999, count: 1000}
          b: {type: categorical, vals: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
              17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36,
              37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56,
              57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76,
              77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96,
              97, 98, 99, 100, 101]}
        searcher: {name: grid, metric: m, max_length: 1}
        """
    )
    with pytest.raises(InvalidConfig, match=r"101000 points.*a: 1000, b: 101"):
        parse_config(yaml.safe_load(text))
