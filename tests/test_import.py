"""``import ridgeline`` stays light: heavy libraries load only where they are used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["pandas", "numpy", "scipy", "sqlalchemy", "yaml", "aiohttp", "rich", "alembic"]


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_ridgeline_pulls_in_nothing_heavy() -> None:
    loaded = modules_after("import ridgeline")
    assert not loaded & set(HEAVY)


def test_trial_side_imports_nothing_heavy() -> None:
    loaded = modules_after("import ridgeline as sherpa\nsherpa.Client(test_mode=True).get_trial()")
    assert not loaded & set(HEAVY)


def test_sherpa_names_resolve() -> None:
    import ridgeline as sherpa

    for name in [
        "Study",
        "optimize",
        "Client",
        "Trial",
        "TrialStatus",
        "AlgorithmState",
        "Continuous",
        "Discrete",
        "Choice",
        "Ordinal",
        "Parameter",
    ]:
        assert getattr(sherpa, name) is not None
    assert sherpa.schedulers.LocalScheduler
    assert sherpa.algorithms.RandomSearch and sherpa.algorithms.MedianStoppingRule
    assert sherpa.RandomSearch is sherpa.algorithms.RandomSearch


def test_sherpa_import_paths_pull_in_nothing_heavy() -> None:
    loaded = modules_after(
        "import ridgeline as sherpa\n"
        "import ridgeline.algorithms.bayesian_optimization as bayesian_optimization\n"
        "from ridgeline.schedulers import LocalScheduler, SGEScheduler\n"
        "import ridgeline.database\n"
        "sherpa.core.Study, sherpa.rng, sherpa.algorithms.successive_halving"
    )
    assert not loaded & set(HEAVY)


def test_core_api_door_does_not_load_the_sherpa_door() -> None:
    loaded = modules_after(
        "import ridgeline.experiment, ridgeline.engine.run, ridgeline.engine.coordinator\n"
        "from ridgeline.samplers.factory import model_sampler\n"
        "model_sampler('auto', 5)"
    )
    sherpa_door = {m for m in loaded if m.startswith(("ridgeline.sherpa", "ridgeline.algorithms"))}
    assert not sherpa_door
