"""TensorBoard event files per trial, written by the coordinator from what trials report.

Layout: ``<experiment output>/tensorboard/trial_<number>/`` per trial, so
``tensorboard --logdir <experiment output>/tensorboard`` shows every trial as one run. Each
report becomes scalars tagged ``<group>/<name>`` (``training/loss``, ``validation/x``; a
SHERPA trial's objective is ``validation/objective``) at its step; each trial's
hyperparameters go to the HParams plugin (a session per trial, ended with its state), and the
root run holds the experiment's summary naming the searcher metric first. The same trial
folder is what ``core_context.train.get_tensorboard_path()`` returns, so a script's own
``SummaryWriter`` there shows in the same run.

Who writes: the coordinator, on one worker thread that follows the store by cursor (reports
are durable and append-only there). The event loop only pokes the thread, never waits on the
disk or protobuf; trial processes stay free of TensorBoard's imports; and because the cursor
and the trials already written are kept in ``.ridgeline-export.json`` beside the runs, a
coordinator that restarts carries on where the files end, and a trial whose coordinator died
loses nothing that reached the store.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

from ridgeline.paths import confined

log = logging.getLogger("ridgeline")

FOLDER = "tensorboard"
STATE_FILE = ".ridgeline-export.json"
POLL_SECONDS = 1.0
#: Metric groups as they are tagged; the searcher's own group repeats a validation metric.
SKIPPED_GROUPS = ("searcher",)
_STATUS = {"COMPLETED": 1, "STOPPED": 3, "CANCELED": 3, "FAILED": 2}  # SUCCESS, ABORTED, FAILURE


def available() -> bool:
    """True when the ``tensorboard`` package is installed (``ridgeline[tensorboard]``)."""
    import importlib.util

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


def _flat(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested hyperparameter groups as ``a.b`` names (the HParams plugin has no nesting)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


class _Files:
    """The event writers, one per run folder; only the export thread touches them."""

    def __init__(self, root: Path) -> None:
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


class TensorBoardExport:
    """An engine observer and a worker thread: see the module docstring.

    ``searcher_metric`` is the tag listed first in the HParams plugin (``validation/<name>``).
    """

    def __init__(
        self,
        store: Any,
        experiment_id: int,
        output_dir: str | os.PathLike[str],
        searcher_metric: str = "objective",
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.store = store
        self.experiment_id = experiment_id
        self.root = Path(output_dir) / FOLDER
        self.searcher_tag = f"validation/{searcher_metric}"
        self.poll_seconds = poll_seconds
        self._ends: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = self._load_state()
        self._trials: dict[int, tuple[int, dict[str, Any]]] = {}  # trial id -> number, params
        self._tags: set[str] = set(self._state["tags"])
        self._hparams: dict[str, str] = dict(self._state["hparams"])  # name -> value field
        self.failed = False

    # -- engine observer (called on the event loop: only queue and wake) ---------------------
    def trial_observed(
        self,
        number: int,
        step: int,
        params: dict[str, Any],
        objective: float,
        context: dict[str, Any],
    ) -> None:
        self._wake.set()

    def trial_ended(self, number: int, status: str) -> None:
        self._ends.put((number, status))
        self._wake.set()

    # -- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ridgeline-tensorboard", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Write what is left, then stop the thread (called when the run ends)."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        files: _Files | None = None
        try:
            files = _Files(self.root)
            while True:
                stopping = self._stop.is_set()
                self._export(files)
                if stopping:
                    break
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
        except Exception as exc:  # noqa: BLE001 - TensorBoard files must never fail a search
            self.failed = True
            log.warning("TensorBoard export stopped: %s: %s", type(exc).__name__, exc)
        finally:
            if files is not None:
                files.close()

    def _export(self, files: _Files) -> None:
        state = self._state
        ends: list[tuple[int, str]] = []  # taken first: their trials' reports are stored
        while not self._ends.empty():
            ends.append(self._ends.get())
        metrics = self.store.read_metrics(self.experiment_id, after=state["cursor"])
        started: set[int] = set(state["started"])
        changed = bool(metrics)
        for metric in metrics:
            if metric.group in SKIPPED_GROUPS:
                continue
            number, params = self._trial(metric.trial_id)
            run = f"trial_{number}"
            if number not in started:
                files.session_start(run, params, metric.time)
                started.add(number)
                for name, value in params.items():
                    self._hparams.setdefault(name, _hparam_value(value)[0])
            values = {
                f"{metric.group}/{name}": float(value)
                for name, value in metric.values.items()
                if isinstance(value, int | float) and not isinstance(value, bool)
            }
            if values:
                files.scalars(run, int(metric.step), metric.time, values)
                self._tags.update(values)
        ended: set[int] = set(state["ended"])
        for number, status in ends:
            if number in started and number not in ended:
                files.session_end(f"trial_{number}", status, time.time())
                ended.add(number)
                changed = True
        if not changed:
            return
        known = sorted(self._tags)
        if known != state["tags"] or self._hparams != state["hparams"]:
            order = [self.searcher_tag] + [t for t in known if t != self.searcher_tag]
            files.experiment(self._hparams, order, time.time())
        files.flush()  # the events are on disk before the cursor says so
        if metrics:
            state["cursor"] = metrics[-1].seq
        state.update(
            started=sorted(started), ended=sorted(ended), tags=known, hparams=dict(self._hparams)
        )
        self._save_state()

    def _trial(self, trial_id: int) -> tuple[int, dict[str, Any]]:
        if trial_id not in self._trials:
            record = self.store.get_trial(trial_id)
            self._trials[trial_id] = (record.number, _flat(dict(record.params)))
        return self._trials[trial_id]

    # -- where the export stands -------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        empty: dict[str, Any] = {"cursor": 0, "started": [], "ended": [], "tags": [], "hparams": {}}
        try:
            stored = json.loads((self.root / STATE_FILE).read_text())
        except (OSError, ValueError):
            return empty
        return empty | {k: stored[k] for k in empty if k in stored}

    def _save_state(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / STATE_FILE
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(self._state))
        os.replace(scratch, path)


__all__ = ["FOLDER", "TensorBoardExport", "available", "trial_folder", "wanted"]
