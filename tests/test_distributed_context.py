"""DistributedContext between real processes: collectives, operations and preemption shared
by the chief, sharded checkpoints, and what strangers and dead ranks get."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ridgeline.core import DistributedContext
from ridgeline.core.channel import ChannelError, Hub, Spoke
from ridgeline.core.checkpoint import merge_metadata

RANKS = """
import json, os, sys
import ridgeline as det

rank, size, local = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
dist = det.core.DistributedContext(
    rank=rank, size=size, local_rank=rank % local, local_size=local,
    cross_rank=rank // local, cross_size=size // local, chief_ip="127.0.0.1",
)
out = {}
"""


def run_ranks(tmp: Path, body: str, size: int = 3, local: int | None = None, **env: str) -> list:
    """Run ``body`` in ``size`` processes (ranks); returns what each put in ``out``."""
    script = tmp / "ranks.py"
    script.write_text(RANKS + textwrap.dedent(body) + "\nprint(json.dumps(out))\n")
    environ = {**os.environ, "RIDGELINE_DIST_SECRET": os.urandom(8).hex(), **env}
    environ["RIDGELINE_CHIEF_PORT"] = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(r), str(size), str(local or size)],
            cwd=tmp,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(size)
    ]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=60)
        results.append((proc.returncode, stdout, stderr))
    return results


def outputs(results: list) -> list[dict]:
    for code, _, stderr in results:
        assert code == 0, stderr
    return [json.loads(stdout.strip().splitlines()[-1]) for _, stdout, _ in results]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_collectives_over_one_machine(workdir: Path) -> None:
    body = """
    out["allgather"] = dist.allgather(rank * 10)
    out["gather"] = dist.gather({"r": rank})
    out["broadcast"] = dist.broadcast(f"from {rank}")
    out["again"] = dist.allgather(rank)
    dist.close()
    """
    got = outputs(run_ranks(workdir, body, size=3))
    assert [g["allgather"] for g in got] == [[0, 10, 20]] * 3
    assert got[0]["gather"] == [{"r": 0}, {"r": 1}, {"r": 2}]
    assert got[1]["gather"] is None and got[2]["gather"] is None
    assert [g["broadcast"] for g in got] == ["from 0"] * 3
    assert [g["again"] for g in got] == [[0, 1, 2]] * 3


def test_local_collectives_stay_on_their_machine(workdir: Path) -> None:
    # Two "machines" of two ranks each: the chief's hub on TCP, each machine's on a socket.
    body = """
    out["all"] = dist.allgather(rank)
    out["local"] = dist.allgather_local(rank)
    out["gather_local"] = dist.gather_local(rank)
    out["bcast_local"] = dist.broadcast_local(rank)
    """
    got = outputs(run_ranks(workdir, body, size=4, local=2))
    assert [g["all"] for g in got] == [[0, 1, 2, 3]] * 4
    assert [g["local"] for g in got] == [[0, 1], [0, 1], [2, 3], [2, 3]]
    assert [g["gather_local"] for g in got] == [[0, 1], None, [2, 3], None]
    assert [g["bcast_local"] for g in got] == [0, 0, 2, 2]


def test_chief_hands_operations_and_preemption_to_the_workers(workdir: Path) -> None:
    body = """
    with det.core.init(distributed=dist, max_length=7) as core:
        lengths = []
        for op in core.searcher.operations():
            lengths.append(op.length)
            if rank == 0:
                op.report_completed(0.5)
            else:
                try:
                    op.report_completed(0.5)
                except RuntimeError as exc:
                    out["worker_report"] = str(exc)
        out["lengths"] = lengths
        out["preempt"] = core.preempt.should_preempt()
        try:
            core.train.report_validation_metrics(7, {"x": 1.0})
            out["train"] = "reported"
        except RuntimeError as exc:
            out["train"] = str(exc)
    """
    got = outputs(run_ranks(workdir, body, size=2))
    assert [g["lengths"] for g in got] == [[7], [7]]
    assert [g["preempt"] for g in got] == [False, False]
    assert "only the chief" in got[1]["worker_report"]
    assert got[0]["train"] == "reported"
    assert "called on a worker (rank 1)" in got[1]["train"]


def test_sharded_checkpoint_merges_every_rank(workdir: Path) -> None:
    body = """
    storage = os.path.abspath("ckpts")
    with det.core.init(distributed=dist, checkpoint_storage=storage) as core:
        meta = {"steps_completed": 4, "ranks": {str(rank): rank}}
        with core.checkpoint.store_path(meta, shard=True) as (path, uuid):
            (path / f"rank{rank}.bin").write_text(str(rank))
        out["uuid"] = uuid
        with core.checkpoint.restore_path(uuid) as path:
            out["files"] = sorted(p.name for p in path.iterdir())
        try:
            with core.checkpoint.store_path({"steps_completed": 4}) as (path, _):
                pass
            out["single"] = "stored"
        except RuntimeError as exc:
            out["single"] = str(exc)
    """
    got = outputs(run_ranks(workdir, body, size=3))
    assert len({g["uuid"] for g in got}) == 1
    files = ["metadata.json", "rank0.bin", "rank1.bin", "rank2.bin"]
    assert all(g["files"] == files for g in got)  # each rank sees the whole checkpoint
    metadata = json.loads((workdir / "ckpts" / got[0]["uuid"] / "metadata.json").read_text())
    assert metadata == {"steps_completed": 4, "ranks": {"0": 0, "1": 1, "2": 2}}
    assert got[0]["single"] == "stored"
    assert "shard=True" in got[1]["single"]


def test_conflicting_metadata_is_refused_by_name() -> None:
    assert merge_metadata([{"a": {"b": 1}}, {"a": {"c": 2}}]) == {"a": {"b": 1, "c": 2}}
    with pytest.raises(RuntimeError, match=r"'a.b' differs between rank 0 \(1\) and rank 1"):
        merge_metadata([{"a": {"b": 1}}, {"a": {"b": 2}}])


def test_a_dead_rank_ends_the_others_collectives(workdir: Path) -> None:
    body = """
    dist.allgather(rank)
    if rank == 2:
        os._exit(5)
    try:
        dist.allgather(rank)
        out["second"] = "done"
    except ConnectionError as exc:
        out["second"] = type(exc).__name__
    """
    results = run_ranks(workdir, body, size=3)
    assert results[2][0] == 5
    chief = json.loads(results[0][1].strip().splitlines()[-1])
    assert chief["second"] == "ChannelError"


def test_strangers_and_forged_frames_are_refused(workdir: Path) -> None:
    address = ("tcp", ("127.0.0.1", _free_port()))
    key = os.urandom(32)
    import threading

    joined: list[Hub] = []
    hub_thread = threading.Thread(target=lambda: joined.append(Hub(address, [1], key, 20)))
    hub_thread.start()
    with pytest.raises(ChannelError):  # the wrong secret: the hub drops the connection
        stranger = Spoke(address, 1, b"wrong key", timeout=10)
        stranger.send("hello")
        stranger.recv()
    friend = Spoke(address, 1, key, timeout=10)
    hub_thread.join(timeout=20)
    (hub,) = joined
    friend.send({"ok": 1})
    assert hub.gather() == [(1, {"ok": 1})]
    # A frame with a forged MAC (as an attacker on the path would inject) is refused.
    friend.link.key = b"forged"
    friend.send("evil")
    with pytest.raises(ChannelError, match="failed authentication"):
        hub.gather()
    hub.close()
    friend.close()


def test_bad_rank_layouts_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"rank=2 must be in 0..size-1"):
        DistributedContext(rank=2, size=2, local_rank=0, local_size=2)
    with pytest.raises(ValueError, match="local_size x cross_size"):
        DistributedContext(rank=0, size=4, local_rank=0, local_size=3, cross_rank=0, cross_size=1)
    with pytest.raises(ValueError, match="give chief_ip"):
        DistributedContext(rank=0, size=2, local_rank=0, local_size=1, cross_rank=0, cross_size=2)


def test_from_torch_distributed_outside_a_launcher(workdir: Path, monkeypatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="RANK is not set"):
        DistributedContext.from_torch_distributed()
    one = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"}
    for name, value in {**one, "GROUP_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    context = DistributedContext.from_torch_distributed()
    assert (context.size, context.cross_size, context.allgather(3)) == (1, 1, [3])


def test_no_shared_secret_is_a_clear_error(workdir: Path) -> None:
    body = "out['never'] = True\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIDGELINE_")}
    script = workdir / "ranks.py"
    script.write_text(RANKS + body)
    result = subprocess.run(
        [sys.executable, str(script), "1", "2", "2"], env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "RIDGELINE_DIST_SECRET" in result.stderr
