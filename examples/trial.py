"""Trial script: trains a toy model with the suggested hyperparameters, reporting each epoch.

ridgeline starts it as a separate process; run it by hand with ``--test`` to debug.
"""

from __future__ import annotations

import math
import sys
import time

import ridgeline as sherpa

client = sherpa.Client(test_mode="--test" in sys.argv)
trial = client.get_trial()
params = trial.parameters or {"learning_rate": 0.01, "num_units": 32, "activation": "relu"}

# A deterministic "learning curve": the loss decays at a rate set by the hyperparameters.
rate = params["learning_rate"] * params["num_units"] / (10 if params["activation"] == "tanh" else 8)
floor = abs(math.log10(params["learning_rate"]) + 2) / 10
loss = 1.0
for epoch in range(8):
    time.sleep(0.05)  # stands in for a training epoch
    loss = floor + (loss - floor) * math.exp(-rate)
    client.send_metrics(trial=trial, iteration=epoch, objective=loss, context={"epoch_time": 0.05})
