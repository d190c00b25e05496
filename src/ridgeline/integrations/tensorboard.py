"""TensorBoard event files per trial, written by the coordinator from what trials report.

Layout: ``<experiment output>/tensorboard/trial_<number>/`` per trial, so
``tensorboard --logdir <experiment output>/tensorboard`` shows every trial as one run. Each
report becomes scalars tagged ``<group>/<name>`` (``training/loss``, ``validation/x``; a
SHERPA trial's objective is ``validation/objective``) at its step; each trial's
hyperparameters go to the HParams plugin (a session per trial, ended with its state), and the
root run holds the experiment's summary naming the searcher metric first. The same trial
folder is what ``core_context.train.get_tensorboard_path()`` returns, so a script's own
``SummaryWriter`` there shows in the same run.

Who writes: the coordinator, on a worker thread that follows the store by cursor
(``ridgeline.integrations.follow``): the event loop never waits on the disk or protobuf, trial
processes stay free of TensorBoard's imports (and may run on nodes that cannot write here),
and the cursor, kept in ``.ridgeline-export.json`` beside the runs, lets a restarted
coordinator carry on where the files end, so nothing that reached the store is lost.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

from ridgeline.integrations.follow import POLL_SECONDS, StoreFollower, scalars
from ridgeline.paths import confined

FOLDER = "tensorboard"
STATE_FILE = ".ridgeline-export.json"
_STATUS = {"COMPLETED": 1, "STOPPED": 3, "CANCELED": 3, "FAILED": 2}  # SUCCESS, ABORTED, FAILURE


def available() -> bool:
    """True when the ``tensorboard`` package is installed (``ridgeline[tensorboard]``)."""
    return importlib.util.find_spec("tensorboard") is not None


def wanted() -> bool:
    """Export unless ``RIDGELINE_TENSORBOARD=0``, when TensorBoard is installed."""
    return os.environ.get("RIDGELINE_TENSORBOARD", "1") not in ("0", "false", "no") and available()


def trial_folder(output_dir: str | os.PathLike[str], number: int) -> Path:
    """``<output>/tensorboard/trial_<number>``, kept inside the experiment's output."""
    return confined(Path(output_dir), FOLDER, f"trial_{int(number)}", what="tensorboard folder")


def _hparam_value(value: Any) -> tuple[str, Any]:
    """The field of ``google.protobuf.Value`` a hyperparameter goes in."""
    if isinstance(value, bool):
        return "bool_value", value
    if isinstance(value, int | float):
        return "number_value", float(value)
    if isinstance(value, str):
        return "string_value", value
    return "string_value", json.dumps(value, default=str)


class _Files:
    """The event writers, one per run folder; only the export thread touches them."""

    def __init__(self, root: Path) -> None:
        # lazy: optional extra (tensorboard)
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.event_pb2, self.summary_pb2 = event_pb2, summary_pb2
        self.api_pb2, self.metadata, self.plugin_pb2 = api_pb2, metadata, plugin_data_pb2
        self._writer_class = EventFileWriter
        self.root = root
        self._writers: dict[str, Any] = {}

    def _writer(self, run: str) -> Any:
        if run not in self._writers:
            folder = self.root if run == "." else confined(self.root, run, what="tensorboard run")
            folder.mkdir(parents=True, exist_ok=True)
            self._writers[run] = self._writer_class(str(folder), flush_secs=3600)
        return self._writers[run]

    def scalars(self, run: str, step: int, wall: float, values: dict[str, float]) -> None:
        summary = self.summary_pb2.Summary(
            value=[
                self.summary_pb2.Summary.Value(tag=tag, simple_value=value)
                for tag, value in values.items()
            ]
        )
        event = self.event_pb2.Event(wall_time=wall, step=step, summary=summary)
        self._writer(run).add_event(event)

    def _plugin(self, run: str, tag: str, data: Any, wall: float) -> None:
        content = self.metadata.create_summary_metadata(data)
        summary = self.summary_pb2.Summary(
            value=[self.summary_pb2.Summary.Value(tag=tag, metadata=content)]
        )
        self._writer(run).add_event(self.event_pb2.Event(wall_time=wall, summary=summary))

    def session_start(self, run: str, params: dict[str, Any], wall: float) -> None:
        info = self.plugin_pb2.SessionStartInfo(group_name=run, start_time_secs=wall)
        for name, value in params.items():
            field, plain = _hparam_value(value)
            setattr(info.hparams[name], field, plain)
        data = self.plugin_pb2.HParamsPluginData(session_start_info=info)
        self._plugin(run, self.metadata.SESSION_START_INFO_TAG, data, wall)

    def session_end(self, run: str, status: str, wall: float) -> None:
        info = self.plugin_pb2.SessionEndInfo(status=_STATUS.get(status, 0), end_time_secs=wall)
        data = self.plugin_pb2.HParamsPluginData(session_end_info=info)
        self._plugin(run, self.metadata.SESSION_END_INFO_TAG, data, wall)

    def experiment(self, hparams: dict[str, str], metrics: list[str], wall: float) -> None:
        api = self.api_pb2
        types = {
            "number_value": api.DATA_TYPE_FLOAT64,
            "string_value": api.DATA_TYPE_STRING,
            "bool_value": api.DATA_TYPE_BOOL,
        }
        info = api.Experiment(
            time_created_secs=wall,
            hparam_infos=[
                api.HParamInfo(name=name, type=types[kind])
                for name, kind in sorted(hparams.items())
            ],
            metric_infos=[api.MetricInfo(name=api.MetricName(tag=tag)) for tag in metrics],
        )
        data = self.plugin_pb2.HParamsPluginData(experiment=info)
        self._plugin(".", self.metadata.EXPERIMENT_TAG, data, wall)

    def flush(self) -> None:
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


class TensorBoardExport(StoreFollower):
    """Event files per trial under ``output_dir/tensorboard``; see the module docstring.

    ``searcher_metric`` is the tag listed first in the HParams plugin (``validation/<name>``).
    """

    name = "TensorBoard export"

    def __init__(
        self,
        store: Any,
        experiment_id: int,
        output_dir: str | os.PathLike[str],
        searcher_metric: str = "objective",
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.root = Path(output_dir) / FOLDER
        super().__init__(store, experiment_id, self.root / STATE_FILE, poll_seconds)
        self.searcher_tag = f"validation/{searcher_metric}"
        self.state = {"tags": [], "hparams": {}} | self.state
        self._files: _Files | None = None
        self._tags: set[str] = set()
        self._written_hparams: dict[str, str] = dict(self.state["hparams"])

    def open(self) -> None:
        self._files = _Files(self.root)

    def started(self, number: int, params: dict[str, Any], wall: float) -> None:
        assert self._files is not None
        self._files.session_start(f"trial_{number}", params, wall)
        for name, value in params.items():
            self.state["hparams"].setdefault(name, _hparam_value(value)[0])

    def metric(
        self, number: int, group: str, step: int, values: dict[str, Any], wall: float
    ) -> None:
        assert self._files is not None
        found = scalars(group, values)
        if found:
            self._files.scalars(f"trial_{number}", step, wall, found)
            self._tags.update(found)

    def ended(self, number: int, trial_id: int, status: str) -> None:
        assert self._files is not None
        self._files.session_end(f"trial_{number}", status, time.time())
        self._files.flush()

    def flush(self) -> None:
        assert self._files is not None
        known = sorted(set(self.state["tags"]) | self._tags)
        if known != self.state["tags"] or self.state["hparams"] != self._written_hparams:
            order = [self.searcher_tag] + [t for t in known if t != self.searcher_tag]
            self._files.experiment(dict(self.state["hparams"]), order, time.time())
            self.state["tags"] = known
            self._written_hparams = dict(self.state["hparams"])
        self._files.flush()

    def shut(self) -> None:
        if self._files is not None:
            self._files.close()


__all__ = ["FOLDER", "TensorBoardExport", "available", "trial_folder", "wanted"]
