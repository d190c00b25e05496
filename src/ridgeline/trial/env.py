"""Environment variables that tell a trial process where its coordinator is and who it is."""

from __future__ import annotations

MASTER = "RIDGELINE_MASTER"  # http(s)://host:port of the coordinator
CERT_SHA256 = "RIDGELINE_CERT_SHA256"  # with https: the SHA-256 of the coordinator's certificate
CERT_KEY = "cert_sha256"  # the same in coordinator.json and the store's coordinator record
MASTER_FILE = "RIDGELINE_MASTER_FILE"  # JSON file with the current address (re-read on failure)
TOKEN = "RIDGELINE_TOKEN"  # bearer token good for this trial attempt only
TRIAL_ID = "RIDGELINE_TRIAL_ID"  # the trial's number within its experiment
EXPERIMENT_ID = "RIDGELINE_EXPERIMENT_ID"
OUTPUT_DIR = "RIDGELINE_OUTPUT_DIR"
RESOURCE = "RIDGELINE_RESOURCE"
RETRY_SECONDS = "RIDGELINE_RETRY_SECONDS"  # how long to retry while the coordinator is away
HEARTBEAT_SECONDS = "RIDGELINE_HEARTBEAT_SECONDS"  # silence after which a trial is lost

# Core-API trials (get_cluster_info) read these too.
TRIAL_GLOBAL_ID = "RIDGELINE_TRIAL_GLOBAL_ID"  # the trial's id across the store
HPARAMS = "RIDGELINE_HPARAMS"  # JSON, nested as configured
TRIAL_SEED = "RIDGELINE_TRIAL_SEED"
LATEST_CHECKPOINT = "RIDGELINE_LATEST_CHECKPOINT"  # uuid to resume from, if any
CHECKPOINT_STORAGE = "RIDGELINE_CHECKPOINT_STORAGE"  # directory holding <uuid>/ folders
TENSORBOARD_PATH = "RIDGELINE_TENSORBOARD_PATH"  # this trial's TensorBoard run folder
USER_DATA = "RIDGELINE_USER_DATA"  # JSON of the config's `data` section
MAX_LENGTH = "RIDGELINE_MAX_LENGTH"
LENGTH_UNIT = "RIDGELINE_LENGTH_UNIT"
SLOT_IDS = "RIDGELINE_SLOT_IDS"  # comma-separated GPU ids given to this trial

# The processes of one distributed trial (ridgeline.core.distributed, ridgeline.launch).
SLOTS_PER_TRIAL = "RIDGELINE_SLOTS_PER_TRIAL"  # resources.slots_per_trial: processes per trial
CONTAINER_ADDRS = "RIDGELINE_CONTAINER_ADDRS"  # comma-separated addresses of the trial's nodes
CONTAINER_RANK = "RIDGELINE_CONTAINER_RANK"  # this node's index among them
CHIEF_IP = "DET_CHIEF_IP"  # address of rank 0's machine (Determined's name)
CHIEF_PORT = "RIDGELINE_CHIEF_PORT"  # TCP port of rank 0's hub when a trial spans machines
DIST_SECRET = "RIDGELINE_DIST_SECRET"  # shared secret of the ranks when not run by ridgeline

SHERPA_TRIAL_ID = "SHERPA_TRIAL_ID"
SHERPA_OUTPUT_DIR = "SHERPA_OUTPUT_DIR"
SHERPA_RESOURCE = "SHERPA_RESOURCE"
SHERPA_DB_HOST = "SHERPA_DB_HOST"
SHERPA_DB_PORT = "SHERPA_DB_PORT"

DEFAULT_RETRY_SECONDS = 600.0
