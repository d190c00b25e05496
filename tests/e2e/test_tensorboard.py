"""TensorBoard event files from a real Core-API experiment: read back with TensorBoard's own
reader, and served by a real ``tensorboard --logdir`` over the experiment's folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import ridgeline
from ridgeline.store import open_store

pytest.importorskip("tensorboard", reason="TensorBoard is in the dev extra")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2  # noqa: E402

TRIAL = """
import ridgeline as det

info = det.get_cluster_info()
with det.core.init() as ctx:
    hp = info.trial.hparams
    folder = ctx.train.get_tensorboard_path()
    if info.trial.trial_id == 1:  # a script's own writer shows in the same run
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        own = EventFileWriter(str(folder))
        value = summary_pb2.Summary.Value(tag="own/custom", simple_value=42.0)
        own.add_event(event_pb2.Event(step=1, summary=summary_pb2.Summary(value=[value])))
        own.close()
    sign = 1 if hp["opt"]["kind"] == "up" else -1
    x = 0
    for op in ctx.searcher.operations():
        for step in range(1, op.length + 1):
            x += hp["inc"] * sign
            ctx.train.report_training_metrics(steps_completed=step, metrics={"loss": 1.0 / step})
        ctx.train.report_validation_metrics(steps_completed=op.length, metrics={"x": x, "acc": 0.5})
        op.report_completed(x)
"""

CONFIG = {
    "name": "tensorboard",
    "entrypoint": "python3 trial.py",
    "hyperparameters": {
        "inc": {"type": "int", "minval": 1, "maxval": 8},
        "opt": {"kind": {"type": "categorical", "vals": ["up", "down"]}},
    },
    "searcher": {
        "name": "random",
        "metric": "x",
        "smaller_is_better": False,
        "max_length": 5,
        "max_trials": 3,
        "max_concurrent_trials": 2,
    },
}


def _hparams(accumulator: EventAccumulator) -> dict[str, plugin_data_pb2.HParamsPluginData]:
    contents = accumulator.PluginTagToContent("hparams")
    out = {}
    for tag, content in contents.items():
        data = plugin_data_pb2.HParamsPluginData()
        data.ParseFromString(content)
        out[tag] = data
    return out


def _get(url: str, body: dict | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as reply:
        return json.loads(reply.read())


def test_event_files_per_trial_viewable_in_tensorboard(workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("RIDGELINE_DATA_DIR", str(workdir / "data"))
    monkeypatch.setenv("RIDGELINE_STORAGE", str(workdir / "data" / "store.db"))
    (workdir / "trial.py").write_text(textwrap.dedent(TRIAL))
    (workdir / "config.yaml").write_text(json.dumps(CONFIG))
    experiment = ridgeline.Experiment.from_yaml(workdir / "config.yaml", workdir)
    experiment.run(verbose=0)
    store = open_store(os.environ["RIDGELINE_STORAGE"])
    try:
        trials = store.list_trials(experiment.id)
        output = Path(store.get_experiment(experiment.id).config["output_dir"])
    finally:
        store.close()
    root = output / "tensorboard"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["trial_1", "trial_2", "trial_3"]
    statuses = {}
    for trial in trials:
        accumulator = EventAccumulator(str(root / f"trial_{trial.number}"))
        accumulator.Reload()
        scalars = set(accumulator.Tags()["scalars"])
        assert {"training/loss", "validation/x", "validation/acc"} <= scalars
        assert [(e.step, e.value) for e in accumulator.Scalars("training/loss")] == [
            (s, pytest.approx(1.0 / s)) for s in range(1, 6)
        ]
        sign = 1 if trial.params["opt.kind"] == "up" else -1
        (final,) = accumulator.Scalars("validation/x")
        assert (final.step, final.value) == (5, 5 * trial.params["inc"] * sign)
        hparams = _hparams(accumulator)
        start = hparams["_hparams_/session_start_info"].session_start_info
        assert start.hparams["inc"].number_value == trial.params["inc"]
        assert start.hparams["opt.kind"].string_value == trial.params["opt.kind"]
        statuses[trial.number] = hparams["_hparams_/session_end_info"].session_end_info.status
        if trial.number == 1:
            assert "own/custom" in scalars  # the script's own file, in the same run
    assert set(statuses.values()) == {api_pb2.STATUS_SUCCESS}
    # the experiment's summary: every hyperparameter, the searcher metric first
    accumulator = EventAccumulator(str(root))
    accumulator.Reload()
    summary = _hparams(accumulator)["_hparams_/experiment"].experiment
    assert sorted(h.name for h in summary.hparam_infos) == ["inc", "opt.kind"]
    assert summary.metric_infos[0].name.tag == "validation/x"

    # the folder, as `tensorboard --logdir` shows it (port 0: the system picks a free one)
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(root)]
        + ["--host", "127.0.0.1", "--port", "0", "--reload_interval", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        assert server.stderr is not None
        while url is None and time.monotonic() < deadline:
            line = server.stderr.readline()
            if not line and server.poll() is not None:
                break
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            url = found.group(1) if found else None
        assert url, "tensorboard did not say where it serves"
        runs = _get(f"{url}/data/runs")
        assert {"trial_1", "trial_2", "trial_3"} <= set(runs)  # type: ignore[arg-type]
        tags = _get(f"{url}/data/plugin/scalars/tags")
        assert all("validation/x" in tags[f"trial_{t.number}"] for t in trials)  # type: ignore[index]
        query = urllib.parse.urlencode({"run": "trial_2", "tag": "training/loss"})
        points = _get(f"{url}/data/plugin/scalars/scalars?{query}")
        assert [p[1] for p in points] == [1, 2, 3, 4, 5]  # type: ignore[union-attr, index]
        experiment_info = _get(f"{url}/data/plugin/hparams/experiment", {"experimentName": ""})
        assert [h["name"] for h in experiment_info["hparamInfos"]] == ["inc", "opt.kind"]  # type: ignore[index]
        assert experiment_info["metricInfos"][0]["name"]["tag"] == "validation/x"  # type: ignore[index]
    finally:
        server.terminate()
        server.wait(timeout=20)


SHERPA_TRIAL = """
import ridgeline as sherpa

client = sherpa.Client()
trial = client.get_trial()
for i in range(3):
    client.send_metrics(trial, iteration=i, objective=trial.parameters["v"] + i, context={"k": i})
"""


def test_runner_writes_event_files_when_asked(workdir: Path) -> None:
    (workdir / "trial.py").write_text(textwrap.dedent(SHERPA_TRIAL))
    ridgeline.optimize(
        parameters=[ridgeline.Continuous("v", [0.0, 1.0])],
        algorithm=ridgeline.algorithms.Iterate([{"v": 0.25}, {"v": 0.5}]),
        lower_is_better=True,
        scheduler=ridgeline.schedulers.LocalScheduler(),
        filename=str(workdir / "trial.py"),
        output_dir=str(workdir / "out"),
        max_concurrent=2,
        verbose=0,
        tensorboard=True,
    )
    for number, v in ((1, 0.25), (2, 0.5)):
        accumulator = EventAccumulator(str(workdir / "out" / "tensorboard" / f"trial_{number}"))
        accumulator.Reload()
        points = [(e.step, e.value) for e in accumulator.Scalars("validation/objective")]
        assert points == [(i, v + i) for i in range(3)]
        assert [e.value for e in accumulator.Scalars("validation/k")] == [0, 1, 2]
        start = _hparams(accumulator)["_hparams_/session_start_info"].session_start_info
        assert start.hparams["v"].number_value == v
    accumulator = EventAccumulator(str(workdir / "out" / "tensorboard"))
    accumulator.Reload()
    summary = _hparams(accumulator)["_hparams_/experiment"].experiment
    assert summary.metric_infos[0].name.tag == "validation/objective"
