"""The Core API: ``with ridgeline.core.init() as core_context: ...`` (Determined's names).

Inside a trial that ridgeline launched, the contexts talk to the coordinator. Anywhere else they
are local stand-ins (one operation of ``max_length``, checkpoints in a local folder, metrics
logged) so a script can be debugged by hand.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from ridgeline.cluster import InvalidHP, get_cluster_info
from ridgeline.core.checkpoint import CheckpointContext, DownloadMode
from ridgeline.core.distributed import DistributedContext
from ridgeline.core.preempt import PreemptContext, PreemptMode
from ridgeline.core.searcher import SearcherContext, SearcherMode, SearcherOperation, Unit
from ridgeline.core.train import EarlyExitReason, TrainContext
from ridgeline.lazy import load_attribute
from ridgeline.sherpa import core as sherpa_core
from ridgeline.trial.client import TrialClient

__all__ = [
    "CheckpointContext",
    "Context",
    "DistributedContext",
    "DownloadMode",
    "EarlyExitReason",
    "PreemptContext",
    "PreemptMode",
    "SearcherContext",
    "SearcherMode",
    "SearcherOperation",
    "TensorboardMode",
    "TrainContext",
    "Unit",
    "init",
]

log = logging.getLogger("ridgeline.core")


class TensorboardMode:
    AUTO = "AUTO"
    MANUAL = "MANUAL"


class Context:
    """What ``init()`` returns: ``.searcher``, ``.checkpoint``, ``.train``, ``.preempt``,
    ``.distributed``."""

    def __init__(
        self,
        checkpoint: CheckpointContext,
        distributed: DistributedContext,
        preempt: PreemptContext,
        searcher: SearcherContext,
        train: TrainContext,
    ) -> None:
        self.checkpoint = checkpoint
        self.distributed = distributed
        self.preempt = preempt
        self.searcher = searcher
        self.train = train
        self.experimental = None
        self.profiler = None

    def __enter__(self) -> Context:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, InvalidHP):
            log.info("InvalidHP raised: %s; the trial ends without counting", exc)
            if self.distributed.rank == 0:
                self.train.report_early_exit(EarlyExitReason.INVALID_HP)
            self.close()
            sys.exit(0)
        self.close()

    def close(self) -> None:
        self.preempt.close()
        self.distributed.close()


def init(
    *,
    distributed: DistributedContext | None = None,
    checkpoint_storage: str | os.PathLike[str] | dict[str, Any] | None = None,
    preempt_mode: PreemptMode = PreemptMode.WorkersAskChief,
    tensorboard_mode: str = TensorboardMode.AUTO,
    max_length: int | None = None,
) -> Context:
    """Contexts for this trial. Off-cluster, ``max_length`` (default 1) is the length of the
    one local operation and ``checkpoint_storage`` (default ``./checkpoints``) holds
    checkpoints."""
    info = get_cluster_info()
    distributed = distributed or DistributedContext()
    if info is None:
        storage = _local_storage(checkpoint_storage)
        return Context(
            CheckpointContext(None, storage, distributed),
            distributed,
            PreemptContext(None, distributed, preempt_mode),
            SearcherContext(None, max_length or 1, None, distributed),
            TrainContext(None, distributed),
        )

    client = TrialClient()
    storage = Path(info.checkpoint_storage or _local_storage(checkpoint_storage))
    length = int(info.max_length) if info.max_length is not None else max_length
    return Context(
        CheckpointContext(client, storage, distributed),
        distributed,
        PreemptContext(client, distributed, preempt_mode),
        SearcherContext(client, length, info.length_unit, distributed),
        TrainContext(client, distributed),
    )


def _local_storage(storage: str | os.PathLike[str] | dict[str, Any] | None) -> Path:
    """A path, or a dict shaped like the YAML ``checkpoint_storage`` section."""
    if isinstance(storage, dict):
        base = storage.get("host_path") or storage.get("container_path") or "checkpoints"
        return (Path(base) / storage.get("storage_path", "")).resolve()
    return Path(storage or "checkpoints").resolve()


def __getattr__(name: str) -> Any:
    """SHERPA's ``sherpa.core`` names (``Study``, ``Trial``, ``Parameter``, ...), loaded on first
    use: under ``import ridgeline as sherpa`` this module is also ``sherpa.core``. None of them
    shares a name with the Core API."""
    return load_attribute(__name__, globals(), name, sherpa_core.lookup)
