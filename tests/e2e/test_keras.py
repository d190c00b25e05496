"""The Keras callbacks, with real Keras (torch backend) training a tiny model."""

from __future__ import annotations

import csv
import os
import textwrap
from pathlib import Path

import pytest

import ridgeline as sherpa

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras is installed by `make test`")

TRIAL = """
import os
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
import keras
import ridgeline as sherpa

client = sherpa.Client()
trial = client.get_trial()
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 3)).astype("float32")
y = (x @ np.array([1.0, -2.0, 0.5], dtype="float32"))[:, None]
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(trial.parameters["lr"]), loss="mse", metrics=["mae"])
model.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_split=0.25,
          callbacks=[client.keras_send_metrics(trial, objective_name="val_loss",
                                               context_names=["val_mae"])])
"""


def test_keras_send_metrics_in_runner_mode(workdir: Path) -> None:
    trial = workdir / "trial.py"
    trial.write_text(textwrap.dedent(TRIAL))
    os.environ.setdefault("KERAS_BACKEND", "torch")
    sherpa.optimize(
        parameters=[sherpa.Continuous("lr", [0.01, 0.1], scale="log")],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=2),
        lower_is_better=True,
        scheduler=sherpa.schedulers.LocalScheduler(),
        filename=str(trial),
        output_dir=str(workdir / "out"),
        max_concurrent=2,
        verbose=0,
        seed=0,
    )
    with open(workdir / "out" / "results.csv") as handle:
        table = list(csv.DictReader(handle))
    inter = [r for r in table if r["Status"] == "INTERMEDIATE"]
    assert sorted((r["Trial-ID"], r["Iteration"]) for r in inter) == [
        (t, str(e)) for t in ("1", "2") for e in range(3)
    ]
    assert all(float(r["Objective"]) >= 0 and float(r["val_mae"]) >= 0 for r in inter)
    assert sum(r["Status"] == "COMPLETED" for r in table) == 2


def test_study_keras_callback() -> None:
    import numpy as np

    study = sherpa.Study(
        parameters=[sherpa.Continuous("lr", [0.01, 0.1])],
        algorithm=sherpa.algorithms.RandomSearch(max_num_trials=1),
        lower_is_better=True,
        disable_dashboard=True,
        seed=0,
    )
    x = np.ones((8, 2), dtype="float32")
    y = np.ones((8, 1), dtype="float32")
    for trial in study:
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(x, y, epochs=2, verbose=0, callbacks=[study.keras_callback(trial, "loss")])
        study.finalize(trial)
    assert list(study.results.Iteration) == [0, 1, 1]
