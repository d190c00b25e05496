"""Check GPU slot handling on a machine with NVIDIA GPUs and PyTorch (not part of the tests).

    python benchmarks/gpu_slots.py --resources 0 0      # two trials share GPU 0
    python benchmarks/gpu_slots.py --resources 0 1      # one GPU per trial

Each trial multiplies matrices on the GPU it was given and records what it saw: the value of
CUDA_VISIBLE_DEVICES, how many devices PyTorch sees, and the device's name. The check fails if
a trial saw another slot's GPU or if more trials ran at once than there are slots.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import textwrap
from pathlib import Path

import ridgeline as sherpa

TRIAL = """
import json, os, time
import ridgeline as sherpa
client = sherpa.Client()
trial = client.get_trial()
start = time.time()
import torch
seen = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "resource": os.environ.get("SHERPA_RESOURCE"),
        "device_count": torch.cuda.device_count(), "start": start}
if torch.cuda.is_available():
    seen["name"] = torch.cuda.get_device_name(0)
    a = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(50):
        a = (a @ a).clamp_(-1, 1)
    torch.cuda.synchronize()
    seen["matmul_s"] = time.perf_counter() - t
seen["end"] = time.time()
with open(os.path.join(os.environ["SHERPA_OUTPUT_DIR"], f"seen_{trial.id}.json"), "w") as f:
    json.dump(seen, f)
client.send_metrics(trial=trial, iteration=1, objective=seen.get("matmul_s", float("nan")))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", nargs="+", default=["0"])
    parser.add_argument("--trials", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "trial.py"
        script.write_text(textwrap.dedent(TRIAL))
        out = Path(tmp) / "out"
        sherpa.optimize(
            [sherpa.Continuous("x", [0, 1])],
            sherpa.algorithms.RandomSearch(max_num_trials=args.trials),
            True,
            sherpa.schedulers.LocalScheduler(resources=args.resources),
            filename=str(script),
            output_dir=str(out),
            max_concurrent=len(args.resources) + 2,  # more than slots: the slots must cap it
            verbose=0,
        )
        seen = [json.loads(p.read_text()) for p in sorted(out.glob("seen_*.json"))]
    ok = len(seen) == args.trials
    for s in seen:
        print(json.dumps(s))
        ok &= s["cuda_visible_devices"] == s["resource"] and s["resource"] in args.resources
    spans = [(s["start"], s["end"]) for s in seen]
    peak = max(sum(1 for a, b in spans if a <= t < b) for t, _ in spans)
    ok &= peak <= len(args.resources)
    print(f"trials: {len(seen)}, most at once: {peak}, slots: {len(args.resources)}")
    print("GPU slot check:", "passed" if ok else "FAILED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
