"""``get_cluster_info()``: what a trial process knows about itself (Determined's names).

Standard library only: trial processes import it at start-up.
"""

from __future__ import annotations

import json
import os

from ridgeline.trial import env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

LOG_FORMAT = "%(levelname)s: [%(process)s] %(name)s: %(message)s"


class InvalidHP(Exception):
    """Raise inside ``core.init()`` to reject this trial's hyperparameters: the trial ends
    without counting against the trial budget, and the searcher tries others."""


class TrialInfo:
    """The trial part of ``ClusterInfo``."""

    def __init__(
        self,
        trial_id: int,
        experiment_id: int,
        hparams: dict[str, Any],
        trial_seed: int,
        number: int,
        slots_per_trial: int = 1,
    ) -> None:
        self.trial_id = trial_id
        self.experiment_id = experiment_id
        self.hparams = hparams
        self.trial_seed = trial_seed
        self.number = number  # 1-based within the experiment (SHERPA's Trial-ID)
        self.slots_per_trial = slots_per_trial

    def __repr__(self) -> str:
        return f"TrialInfo(trial_id={self.trial_id}, hparams={self.hparams!r})"


class ClusterInfo:
    """Set for processes ridgeline launched; ``get_cluster_info()`` is None elsewhere."""

    task_type = "TRIAL"

    def __init__(self, environ: dict[str, str]) -> None:
        self.master_url = environ[env.MASTER]
        self.session_token = environ.get(env.TOKEN, "")
        self.latest_checkpoint: str | None = environ.get(env.LATEST_CHECKPOINT) or None
        self.user_data: Any = json.loads(environ.get(env.USER_DATA) or "null")
        slots = int(environ.get(env.SLOTS_PER_TRIAL) or 1)
        slot_ids = environ.get(env.SLOT_IDS, "")
        # The GPUs this trial owns; on a machine without GPUs, ``slots_per_trial`` logical
        # slots, so that a launcher starts one process per slot.
        self.slot_ids = [int(s) for s in slot_ids.split(",") if s.strip().isdigit()] or list(
            range(slots)
        )
        addrs = environ.get(env.CONTAINER_ADDRS, "")
        self.container_addrs = [a.strip() for a in addrs.split(",") if a.strip()] or ["127.0.0.1"]
        self.container_rank = int(environ.get(env.CONTAINER_RANK) or 0)
        self.checkpoint_storage = environ.get(env.CHECKPOINT_STORAGE) or None
        self.max_length = float(environ[env.MAX_LENGTH]) if environ.get(env.MAX_LENGTH) else None
        self.length_unit = environ.get(env.LENGTH_UNIT) or None
        number = int(environ.get(env.TRIAL_ID) or environ[env.SHERPA_TRIAL_ID])
        self.trial = TrialInfo(
            trial_id=int(environ.get(env.TRIAL_GLOBAL_ID) or number),
            experiment_id=int(environ.get(env.EXPERIMENT_ID) or 0),
            hparams=json.loads(environ.get(env.HPARAMS) or "{}"),
            trial_seed=int(environ.get(env.TRIAL_SEED) or 0),
            number=number,
            slots_per_trial=slots,
        )

    def __repr__(self) -> str:
        return f"ClusterInfo(master_url={self.master_url!r}, trial={self.trial!r})"


def get_cluster_info() -> ClusterInfo | None:
    """This trial's ``ClusterInfo``, or None when not launched by ridgeline."""
    if not os.environ.get(env.MASTER) or not (
        os.environ.get(env.TRIAL_ID) or os.environ.get(env.SHERPA_TRIAL_ID)
    ):
        return None
    return ClusterInfo(dict(os.environ))
