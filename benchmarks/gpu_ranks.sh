#!/usr/bin/env bash
# Check distributed trials on a machine with NVIDIA GPUs and PyTorch (not a test, never in CI):
# trials of 2 ranks (NCCL) under determined.launch.torch_distributed; each rank records the
# GPUs it saw and the device it trained on. Expect: each trial's two ranks on two distinct
# GPUs of its own, no GPU shared between trials running at once, and no more trials at once
# than GPUs / 2 (with 1 GPU: the experiment is refused, "slots_per_trial is 2 but this machine
# has 1 GPU").
set -euo pipefail
work=$(mktemp -d)
export RIDGELINE_DATA_DIR="$work/data" RIDGELINE_STORAGE="$work/data/store.db"
cat > "$work/train.py" <<'PY'
import json, os, time
import torch
import torch.distributed as dist
import ridgeline as det
dist.init_process_group("nccl")
distributed = det.core.DistributedContext.from_torch_distributed()
device = torch.device("cuda", distributed.local_rank)
torch.cuda.set_device(device)
info = det.get_cluster_info()
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(512, 512).to(device),
                                                  device_ids=[device])
with det.core.init(distributed=distributed) as core:
    seen = {"trial": info.trial.trial_id, "rank": distributed.rank,
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "device": str(device),
            "name": torch.cuda.get_device_name(device), "start": time.time()}
    for op in core.searcher.operations():
        x = torch.randn(4096, 512, device=device)
        for _ in range(200):
            model(x).square().mean().backward()
        torch.cuda.synchronize()
        seen["end"] = time.time()
        if distributed.rank == 0:
            core.train.report_validation_metrics(steps_completed=op.length, metrics={"loss": 1.0})
            op.report_completed(1.0)
    print("SEEN", json.dumps(seen), flush=True)
dist.destroy_process_group()
PY
cat > "$work/cfg.yaml" <<'YAML'
entrypoint: python3 -m determined.launch.torch_distributed python3 train.py
resources: {slots_per_trial: 2}
hyperparameters: {x: {type: double, minval: 0, maxval: 1}}
searcher: {name: random, metric: loss, max_length: 1, max_trials: 4, max_concurrent_trials: 4}
YAML
python3 -m ridgeline.cli e create "$work/cfg.yaml" "$work"
python3 -m ridgeline.cli e wait 1
python3 -m ridgeline.cli e lt 1
cat "$work"/data/experiments/*/jobs/trial_*.out | grep SEEN
