#!/usr/bin/env bash
# Check GPU slots for YAML experiments on a machine with NVIDIA GPUs and PyTorch (not a test):
# each trial records the GPUs it saw; with slots_per_trial: 1 no two trials share one.
set -euo pipefail
work=$(mktemp -d)
export RIDGELINE_DATA_DIR="$work/data" RIDGELINE_STORAGE="$work/data/store.db"
cat > "$work/train.py" <<'PY'
import json, os, time
import torch
import ridgeline as det
info = det.get_cluster_info()
with det.core.init() as ctx:
    seen = {"trial": info.trial.trial_id, "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "count": torch.cuda.device_count(), "start": time.time()}
    for op in ctx.searcher.operations():
        a = torch.randn(2048, 2048, device="cuda")
        for _ in range(20):
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()
        seen["end"] = time.time()
        ctx.train.report_validation_metrics(steps_completed=op.length, metrics={"loss": 1.0})
        op.report_completed(1.0)
    print("SEEN", json.dumps(seen), flush=True)
PY
cat > "$work/cfg.yaml" <<'YAML'
entrypoint: python3 train.py
resources: {slots_per_trial: 1}
hyperparameters: {x: {type: double, minval: 0, maxval: 1}}
searcher: {name: random, metric: loss, max_length: 1, max_trials: 4, max_concurrent_trials: 4}
YAML
python3 -m ridgeline.cli e create "$work/cfg.yaml" "$work"
python3 -m ridgeline.cli e wait 1
python3 -m ridgeline.cli e lt 1
cat "$work"/data/experiments/*/jobs/trial_*.out | grep SEEN
