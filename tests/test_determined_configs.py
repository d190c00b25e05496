"""Determined configs as Determined judges them: what its schema takes, ridgeline takes; what it
refuses, ridgeline refuses; deliberate differences say so in one message."""

from __future__ import annotations

import random
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from ridgeline.config import ConfigWarning, InvalidConfig, grid_points, load_config, parse_config
from ridgeline.config.entrypoint import own_command
from ridgeline.experiment import Experiment, build_searcher, cpu_cores, make_coordinator
from ridgeline.samplers.base import History
from ridgeline.store import open_store


def cfg(text: str) -> dict[str, Any]:
    data = yaml.safe_load(textwrap.dedent(text))
    data.setdefault("entrypoint", "python3 train.py")
    data.setdefault("searcher", {"name": "single", "metric": "loss"})
    return data


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidConfig) as info:
        parse_config(cfg(text), warn=False)
    return info.value.problems


def test_log_hyperparameters_as_determined_writes_them() -> None:
    config = parse_config(
        cfg(
            """
            hyperparameters:
              fixed: {type: log, minval: 1, maxval: 10, base: 1, count: 2}
              lr: {type: log, minval: -4, maxval: -2, base: 10, count: 3}
            searcher: {name: grid, metric: loss}
            """
        ),
        warn=False,
    )
    points = grid_points(config)
    assert {p["fixed"] for p in points} == {1.0}  # base 1: every value is 1
    assert sorted({p["lr"] for p in points}) == pytest.approx([1e-4, 1e-3, 1e-2])
    (found,) = problems("hyperparameters: {lr: {type: log, minval: -4, maxval: -2}}")
    assert found == "hyperparameters.lr.base: base is required (got none); give the base of " + (
        "the exponents, e.g. base: 10"
    )
    (found,) = problems("hyperparameters: {lr: {type: log, minval: -4, maxval: -2, base: 0}}")
    assert found.startswith("hyperparameters.lr.base: must be a number > 0 (got 0)")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("min_validation_period: {batches: -1}", "min_validation_period.batches"),
        ("min_validation_period: 100", "min_validation_period"),
        ("min_checkpoint_period: {batches: 1, epochs: 1}", "min_checkpoint_period"),
        ("scheduling_unit: 0", "scheduling_unit"),
        ("resources: {shm_size: 1 gi}", "resources.shm_size"),
        ("bind_mounts: [{host_path: data, container_path: .}]", "bind_mounts[0].host_path"),
        ("bind_mounts: [{host_path: data, container_path: .}]", "bind_mounts[0].container_path"),
        ("profiling: {enabled: true, begin_on_batch: 9, end_after_batch: 3}", "profiling"),
        ("log_policies: [{pattern: oom, action: retry_forever}]", "log_policies[0].action"),
        ("log_policies: [{}]", "log_policies[0]"),
        ("security: {kerberos: {config_file: 7}}", "security.kerberos.config_file"),
        ("checkpoint_policy: latest", "checkpoint_policy"),
        ("labels: [a, 1]", "labels"),
        (
            "environment: {pod_spec: {spec: {containers: [{name: determined-container, "
            "image: x}]}}}",
            "environment.pod_spec.spec.containers[0]",
        ),
        (
            "searcher: {name: async_halving, metric: m, num_rungs: 2, max_trials: 4, "
            "max_length: 10}",
            "searcher.max_length",
        ),
    ],
)
def test_ignored_fields_are_still_checked_as_determined_checks_them(text: str, where: str) -> None:
    assert any(p.startswith(f"{where}: ") for p in problems(text)), problems(text)


def test_ignored_fields_that_determined_takes_are_named_in_one_warning() -> None:
    text = """
        resources: {shm_size: 1.5 gb, slots_per_trial: 1}
        bind_mounts: [{host_path: /data, container_path: /data, read_only: true}]
        environment: {pod_spec: {spec: {containers: [{name: sidecar, image: x}]}}}
        optimizations: {aggregation_frequency: 2, mixed_precision: O1}
        min_validation_period: {batches: 0}
        log_policies: [{name: oom, pattern: OOM, action: cancel_retries}]
        profiling: {enabled: true, begin_on_batch: 2, end_after_batch: 2}
        """
    with pytest.warns(ConfigWarning) as record:
        parse_config(cfg(text))
    assert len(record) == 1
    message = str(record[0].message)
    for name in (
        "resources.shm_size",
        "bind_mounts",
        "environment.pod_spec",
        "optimizations.aggregation_frequency",
        "optimizations.mixed_precision",
        "min_validation_period",
    ):
        assert name in message


def test_deliberate_differences_say_so_once() -> None:
    (found,) = problems("searcher: {name: adaptive, metric: m, budget: {batches: 10}}")
    assert "the 'adaptive' searcher has been removed" in found
    (found,) = problems(
        "searcher: {name: sync_halving, metric: m, num_rungs: 3, budget: {epochs: 1}, "
        "max_length: {batches: 100}, train_stragglers: true}"
    )
    assert "removed in Determined; ridgeline's sync_halving takes max_trials" in found
    (found,) = problems("entrypoint: model_def:MyTrial")
    assert "names a Trial-API class" in found
    (found,) = problems("entrypoint: [python3, -m, determined.launch.horovod, model_def:MyTrial]")
    assert "names a Trial-API class" in found


@pytest.mark.parametrize(
    "entrypoint",
    [
        "python3 -m determined.launch.deepspeed python3 train.py",
        "horovodrun -np 2 python3 train.py",
    ],
)
def test_launchers_ridgeline_does_not_run_are_refused_at_create(entrypoint: str) -> None:
    (found,) = problems(f"entrypoint: {entrypoint}")
    assert "is not supported: only torch.distributed trials" in found


def test_torch_distributed_launchers_are_accepted_and_run_as_ridgeline_s(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('a rank')\n")
    for entrypoint in (
        "python3 -m determined.launch.torch_distributed python3 train.py",
        "python3 -m determined.launch.torch_distributed --trust -- python3 train.py",
        "torchrun --nproc-per-node 2 train.py",
    ):
        data = cfg(f"entrypoint: {entrypoint}\nresources: {{slots_per_trial: 2}}")
        parse_config(data, warn=False, context_dir=tmp_path)
    assert own_command(
        ["python3", "-m", "determined.launch.torch_distributed", "python3", "t.py"]
    ) == ["python3", "-m", "ridgeline.launch.torch_distributed", "python3", "t.py"]
    assert own_command(["python3", "train.py", "-m", "determined.launch.wrap_rank"]) == [
        "python3",
        "train.py",
        "-m",
        "determined.launch.wrap_rank",
    ]


def test_scripts_needing_other_launchers_are_refused(tmp_path: Path) -> None:
    (tmp_path / "hvd.py").write_text(
        "import ridgeline as det\nd = det.core.DistributedContext.from_horovod(hvd)\n"
    )
    (tmp_path / "launch.py").write_text(
        "import ridgeline as det\ninfo = det.get_cluster_info()\nprint(info.container_addrs)\n"
    )
    data = cfg("entrypoint: python3 hvd.py\nresources: {slots_per_trial: 8}")
    with pytest.raises(InvalidConfig) as info:
        parse_config(data, warn=False, context_dir=tmp_path)
    (found,) = info.value.problems
    assert found.startswith("entrypoint: hvd.py uses from_horovod, which needs a launcher")
    parse_config(
        {**data, "entrypoint": "python3 launch.py launcher"}, warn=False, context_dir=tmp_path
    )


def test_grid_without_hyperparameters_plans_no_trial() -> None:
    config = parse_config(cfg("searcher: {name: grid, metric: loss, max_length: 5}"))
    assert grid_points(config) == []
    searcher = build_searcher(config)
    searcher.bind(config.space, History(), random.Random(0))
    actions = searcher.on_slots_free(4)
    assert [type(a).__name__ for a in actions] == ["Shutdown"]


@pytest.fixture
def store_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    return workdir


def _coordinator(data: dict[str, Any]) -> Any:
    experiment = Experiment.from_dict(data)
    experiment_id = experiment.create()
    store = open_store(experiment.storage)
    try:
        return make_coordinator(store, store.get_experiment(experiment_id))
    finally:
        store.close()


def test_default_concurrency_on_a_cpu_only_machine_is_the_cores(
    store_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIDGELINE_GPUS", "")  # no GPU here
    searcher = {"name": "random", "metric": "loss", "max_trials": 64, "max_length": 1}
    data = cfg("hyperparameters: {x: {type: int, minval: 1, maxval: 9}}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = _coordinator({**data, "searcher": searcher})
        given = _coordinator({**data, "searcher": {**searcher, "max_concurrent_trials": 12}})
    assert default.max_concurrent == min(16, cpu_cores())
    assert given.max_concurrent == 12  # what the config says is kept


def test_environment_variables_follow_the_device_the_trial_runs_on(
    store_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = cfg(
        """
        environment:
          environment_variables:
            cpu: [DEVICE=cpu, OMP_NUM_THREADS=1]
            cuda: [DEVICE=cuda]
        """
    )
    seen = {}
    for gpus, device in (("", "cpu"), ("0,1", "cuda")):
        monkeypatch.setenv("RIDGELINE_GPUS", gpus)
        coordinator = _coordinator(data)
        record = coordinator.engine.store.list_trials(coordinator.engine.experiment_id)
        assert record == []  # nothing ran: the environment is the coordinator's choice
        fake = type("Trial", (), {"params": {}, "number": 1})()
        seen[device] = coordinator.settings.trial_env(fake)
    assert seen["cpu"]["DEVICE"] == "cpu" and seen["cpu"]["OMP_NUM_THREADS"] == "1"
    assert seen["cuda"]["DEVICE"] == "cuda" and "OMP_NUM_THREADS" not in seen["cuda"]


def test_yaml_with_base_one_loads_like_determineds_full_example(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent(
            """
            entrypoint: python3 train.py
            hyperparameters:
              dict_hparam:
                log_hparam: {type: log, minval: 1, maxval: 10, base: 1}
            searcher: {name: single, metric: loss}
            """
        )
    )
    with pytest.warns(ConfigWarning, match="base 1 makes every value 1"):
        config = load_config(path)
    assert config.space["dict_hparam.log_hparam"].sample(random.Random(1)) == 1.0


def test_grid_experiment_without_hyperparameters_ends_with_no_trial(store_env: Path) -> None:
    experiment = Experiment.from_dict(cfg("searcher: {name: grid, metric: loss, max_length: 5}"))
    experiment.run(verbose=0)
    store = open_store(experiment.storage)
    try:
        assert experiment.id is not None
        assert store.list_trials(experiment.id) == []
        assert store.get_experiment(experiment.id).state == "COMPLETED"
    finally:
        store.close()
