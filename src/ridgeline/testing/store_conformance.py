"""Conformance suite for ``ridgeline.store.base.Store`` implementations.

Every store (the in-memory one, SQLite, PostgreSQL, and any third-party one) must pass every
``check_*`` function here. Each takes a fresh, empty store::

    from ridgeline.testing.store_conformance import CHECKS

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_store(check, my_store):
        check(my_store)

The checks only use JSON-native values (dicts with string keys, lists, str, int, float, bool,
None), since that is all a durable store promises to keep. Records may come back as equal copies
or as the very objects stored, so the checks compare values, never identities.

``check_concurrent_trial_numbers`` and ``check_concurrent_open`` take a database URL instead:
they start processes that each open their own store on it.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from ridgeline.errors import ExperimentExists, LeaseHeld, LeaseLost, StoreError
from ridgeline.schedulers.local import process_start_time
from ridgeline.store import open_store
from ridgeline.store.base import Store
from ridgeline.store.lease import this_holder
from ridgeline.store.records import (
    ACTIVE,
    COMPLETED,
    FAILED,
    PAUSED,
    PENDING,
    RUNNING,
    CheckpointRecord,
    EventRecord,
    ExperimentRecord,
    MetricRecord,
    TrialRecord,
)

__all__ = [
    "CHECKS",
    "run_all",
    "check_concurrent_trial_numbers",
    "check_concurrent_open",
    "check_lease_fencing",
    "check_concurrent_create_and_lease",
    "same",
]

NAN = float("nan")
INF = float("inf")


def same(a: Any, b: Any) -> bool:
    """Equal as stored data: NaN equals NaN, and 1 differs from 1.0 and True."""
    return _canon(a) == _canon(b)


def _canon(value: Any) -> str:
    if hasattr(value, "__dataclass_fields__"):
        value = {name: getattr(value, name) for name in value.__dataclass_fields__}
    return json.dumps(value, allow_nan=True, sort_keys=False, default=repr)


def _assert_same(actual: Any, expected: Any, what: str) -> None:
    assert same(actual, expected), f"{what}: got {_canon(actual)}, expected {_canon(expected)}"


def _raises_store_error(fn: Callable[..., Any], *args: Any, names: object, **kwargs: Any) -> None:
    """``fn(*args)`` must raise StoreError whose message names ``names`` (the unknown id)."""
    try:
        fn(*args, **kwargs)
    except StoreError as exc:
        assert str(names) in str(exc), f"{fn.__name__}: message {str(exc)!r} lacks {names!r}"
    else:
        raise AssertionError(f"{fn.__name__}{args!r} did not raise StoreError")


def _near_now(t: float) -> bool:
    return isinstance(t, float) and abs(t - time.time()) < 300


# -- experiments ------------------------------------------------------------------------------
def check_experiments(store: Store) -> None:
    """Create, get, list (by id) and update experiments; update keeps what it is not given."""
    assert store.list_experiments() == []
    config = {"name": "e1", "searcher": {"name": "asha", "max_length": 81}, "lr": [0.1, 1e-300]}
    a = store.create_experiment("e1", config)
    assert isinstance(a, ExperimentRecord)
    assert (a.name, a.state, a.coordinator, a.archived) == ("e1", ACTIVE, None, False)
    _assert_same(a.config, config, "config")
    assert _near_now(a.created_at)
    b = store.create_experiment("e2", {}, state=PAUSED)
    assert b.id != a.id and b.state == PAUSED
    _assert_same(store.get_experiment(a.id), a, "get_experiment")
    assert [e.id for e in store.list_experiments()] == [a.id, b.id]

    coord = {"host": "127.0.0.1", "port": 8123, "pid": 42, "token": "t"}
    u = store.update_experiment(a.id, state=COMPLETED, coordinator=coord)
    assert u.state == COMPLETED and u.coordinator == coord and u.config == config
    assert u.created_at == a.created_at and u.name == "e1"
    _assert_same(store.get_experiment(a.id), u, "after update")
    u = store.update_experiment(a.id, config={"x": 1})
    assert u.config == {"x": 1} and u.coordinator == coord and u.state == COMPLETED
    u = store.update_experiment(a.id, coordinator=None)
    assert u.coordinator is None and u.config == {"x": 1}
    _assert_same(store.update_experiment(a.id), u, "update with no changes")
    _assert_same(store.get_experiment(a.id), u, "after clearing coordinator")
    assert store.get_experiment(b.id).state == PAUSED


def check_archive(store: Store) -> None:
    """New experiments are not archived; ``archived`` is set and cleared on its own, and
    other updates keep it."""
    a = store.create_experiment("a", {"k": 1})
    b = store.create_experiment("b", {})
    assert a.archived is False and store.get_experiment(a.id).archived is False
    u = store.update_experiment(a.id, archived=True)
    assert u.archived is True and u.config == {"k": 1} and u.state == a.state
    assert store.get_experiment(a.id).archived is True
    assert store.get_experiment(b.id).archived is False
    assert store.update_experiment(a.id, state=COMPLETED).archived is True
    assert [e.archived for e in store.list_experiments()] == [True, False]
    assert store.update_experiment(a.id, archived=False).archived is False
    assert store.get_experiment(a.id).archived is False


def check_delete_experiment(store: Store) -> None:
    """Deleting an experiment removes it and everything of it, leaves other experiments
    whole (a child trial elsewhere loses only its parent link), and never reuses ids."""
    doomed = store.create_experiment("doomed", {})
    kept = store.create_experiment("kept", {})
    parent = store.create_trial(doomed.id, 1, {"x": 1})
    store.create_trial(doomed.id, 2, {"x": 2}, parent_id=parent.id)
    other = store.create_trial(kept.id, 1, {"x": 3})
    child = store.create_trial(kept.id, 2, {"x": 4}, parent_id=parent.id)
    store.add_metrics(parent.id, "validation", [(1, {"loss": 1.0})])
    store.add_metrics(other.id, "validation", [(1, {"loss": 2.0})])
    store.add_checkpoint("cp-doomed", parent.id, 1, {})
    store.add_checkpoint("cp-kept", other.id, 1, {})
    store.add_event(doomed.id, "created", {})
    store.add_event(kept.id, "created", {})
    store.save_searcher_state(doomed.id, {"s": 1})
    token = store.acquire_lease(doomed.id, this_holder(), 60)
    store.release_lease(doomed.id, token)

    store.delete_experiment(doomed.id)
    assert [e.id for e in store.list_experiments()] == [kept.id]
    _raises_store_error(store.get_experiment, doomed.id, names=doomed.id)
    _raises_store_error(store.list_trials, doomed.id, names=doomed.id)
    _raises_store_error(store.get_trial, parent.id, names=parent.id)
    _raises_store_error(store.trial_metrics, parent.id, names=parent.id)
    _raises_store_error(store.get_checkpoint, "cp-doomed", names="cp-doomed")
    _raises_store_error(store.read_events, doomed.id, names=doomed.id)
    _raises_store_error(store.load_searcher_state, doomed.id, names=doomed.id)
    _raises_store_error(store.delete_experiment, doomed.id, names=doomed.id)
    assert [t.id for t in store.list_trials(kept.id)] == [other.id, child.id]
    assert store.get_trial(child.id).parent_id is None
    assert [m.values for m in store.read_metrics(kept.id)] == [{"loss": 2.0}]
    assert store.get_checkpoint("cp-kept").trial_id == other.id
    assert [e.kind for e in store.read_events(kept.id)] == ["created"]
    again = store.create_experiment("again", {})
    assert again.id not in (doomed.id, kept.id)
    newer = store.create_trial(again.id, 1, {})
    assert newer.id not in (parent.id, other.id, child.id) and newer.number == 1


# -- trials -----------------------------------------------------------------------------------
def check_trial_numbering(store: Store) -> None:
    """Numbers run 1..n per experiment, independently; ids are unique store-wide."""
    e1 = store.create_experiment("a", {})
    e2 = store.create_experiment("b", {})
    made: dict[int, list[TrialRecord]] = {e1.id: [], e2.id: []}
    for i in range(12):
        exp = e1 if i % 3 else e2
        t = store.create_trial(exp.id, 100 + i, {"i": i, "x": i / 7})
        assert isinstance(t, TrialRecord)
        made[exp.id].append(t)
    for exp_id, trials in made.items():
        assert [t.number for t in trials] == list(range(1, len(trials) + 1))
        assert all(t.experiment_id == exp_id for t in trials)
        listed = store.list_trials(exp_id)
        assert [t.id for t in listed] == [t.id for t in trials]
        for t, got in zip(trials, listed, strict=True):
            _assert_same(got, t, "list_trials")
            _assert_same(store.get_trial(t.id), t, "get_trial")
    ids = [t.id for ts in made.values() for t in ts]
    assert len(set(ids)) == len(ids)
    t = made[e1.id][0]
    assert (t.state, t.restarts, t.exit_code, t.job, t.ended_at, t.parent_id) == (
        PENDING,
        0,
        None,
        None,
        None,
        None,
    )
    assert _near_now(t.created_at)
    assert store.create_trial(e1.id, 999, {}, state=RUNNING).state == RUNNING
    assert store.list_trials(store.create_experiment("empty", {}).id) == []


def check_create_trial_idempotent(store: Store) -> None:
    """A replayed Create (same request id) returns the first trial unchanged and uses no number."""
    e = store.create_experiment("a", {})
    first = store.create_trial(e.id, 7, {"lr": 0.1})
    store.update_trial(first.id, state=RUNNING)
    again = store.create_trial(e.id, 7, {"lr": 0.9}, state=COMPLETED)
    assert again.id == first.id and again.number == 1
    assert again.params == {"lr": 0.1} and again.state == RUNNING
    nxt = store.create_trial(e.id, 8, {"lr": 0.2})
    assert nxt.number == 2
    # The same request id in another experiment is another trial.
    other = store.create_trial(store.create_experiment("b", {}).id, 7, {"lr": 0.3})
    assert other.id != first.id and other.number == 1
    assert len(store.list_trials(e.id)) == 2


def check_trial_parent(store: Store) -> None:
    """``parent_id`` (a warm start) is kept; an unknown parent is refused."""
    e = store.create_experiment("a", {})
    p = store.create_trial(e.id, 1, {"lr": 0.1})
    c = store.create_trial(e.id, 2, {"lr": 0.2}, parent_id=p.id)
    assert c.parent_id == p.id and store.get_trial(c.id).parent_id == p.id
    _raises_store_error(store.create_trial, e.id, 3, {}, parent_id=987654, names=987654)
    assert [t.request_id for t in store.list_trials(e.id)] == [1, 2]


def check_update_trial(store: Store) -> None:
    """Fields change when given, stay when not, and clear when given None."""
    e = store.create_experiment("a", {})
    t = store.create_trial(e.id, 1, {"x": 1})
    job = {"pid": 1234, "start_time": 1.5, "resource": {"gpus": [0, 1]}}
    u = store.update_trial(t.id, state=RUNNING, job=job, restarts=2)
    assert u is not None
    assert (u.state, u.job, u.restarts, u.exit_code, u.ended_at) == (RUNNING, job, 2, None, None)
    assert (u.id, u.number, u.params, u.created_at) == (t.id, t.number, t.params, t.created_at)
    ended = time.time()
    u = store.update_trial(t.id, state=FAILED, exit_code=3, ended_at=ended)
    assert u is not None and (u.state, u.exit_code, u.ended_at, u.job) == (FAILED, 3, ended, job)
    _assert_same(store.get_trial(t.id), u, "get_trial after update")
    u = store.update_trial(t.id, exit_code=None, job=None, ended_at=None, restarts=0)
    assert u is not None and (u.exit_code, u.job, u.ended_at, u.restarts) == (None, None, None, 0)
    assert u.state == FAILED
    _assert_same(store.get_trial(t.id), u, "get_trial after clearing")
    _assert_same(store.update_trial(t.id), u, "update_trial with no changes")


def check_update_trial_cas(store: Store) -> None:
    """``expect_state`` makes the update a compare-and-set."""
    e = store.create_experiment("a", {})
    t = store.create_trial(e.id, 1, {})
    won = store.update_trial(t.id, expect_state=PENDING, state=RUNNING, job={"pid": 1})
    assert won is not None and won.state == RUNNING and won.job == {"pid": 1}
    lost = store.update_trial(t.id, expect_state=PENDING, state=COMPLETED, exit_code=0)
    assert lost is None
    now = store.get_trial(t.id)
    assert now.state == RUNNING and now.exit_code is None
    # A CAS with nothing to change reports whether the state matches.
    assert store.update_trial(t.id, expect_state=PENDING) is None
    same_rec = store.update_trial(t.id, expect_state=RUNNING)
    assert same_rec is not None and same_rec.state == RUNNING
    done = store.update_trial(t.id, expect_state=RUNNING, state=COMPLETED, ended_at=1.0)
    assert done is not None and done.state == COMPLETED and done.ended_at == 1.0


# -- metrics ----------------------------------------------------------------------------------
def check_metrics_cursor(store: Store) -> None:
    """``read_metrics(after=cursor)`` returns exactly the newer reports, in insertion order."""
    e1 = store.create_experiment("a", {})
    e2 = store.create_experiment("b", {})
    t1 = store.create_trial(e1.id, 1, {})
    t2 = store.create_trial(e1.id, 2, {})
    u1 = store.create_trial(e2.id, 1, {})
    assert store.read_metrics(e1.id) == []
    assert store.trial_metrics(t1.id) == []

    r1 = store.add_metrics(t1.id, "validation", [(1, {"loss": 0.9}), (2, {"loss": 0.8})])
    assert [type(r) for r in r1] == [MetricRecord, MetricRecord]
    assert [(r.trial_id, r.group, r.step) for r in r1] == [
        (t1.id, "validation", 1),
        (t1.id, "validation", 2),
    ]
    assert r1[0].values == {"loss": 0.9} and _near_now(r1[0].time)
    store.add_metrics(u1.id, "validation", [(1, {"loss": 0.5})])
    r2 = store.add_metrics(t2.id, "training", [(10, {"loss": 1.5, "acc": 0.25})])
    r3 = store.add_metrics(t1.id, "validation", [(3, {"loss": 0.7})])

    everything = store.read_metrics(e1.id)
    seqs = [m.seq for m in everything]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [(m.trial_id, m.step) for m in everything] == [
        (t1.id, 1),
        (t1.id, 2),
        (t2.id, 10),
        (t1.id, 3),
    ]
    for got, made in zip(everything, r1 + r2 + r3, strict=True):
        _assert_same(got, made, "read_metrics record")

    cursor = r1[-1].seq
    newer = store.read_metrics(e1.id, after=cursor)
    assert [m.seq for m in newer] == [r2[0].seq, r3[0].seq]
    assert store.read_metrics(e1.id, after=everything[-1].seq) == []
    assert [m.step for m in store.read_metrics(e1.id, group="validation")] == [1, 2, 3]
    assert [m.step for m in store.read_metrics(e1.id, after=cursor, group="validation")] == [3]
    assert [m.step for m in store.read_metrics(e1.id, group="training")] == [10]
    assert [m.trial_id for m in store.read_metrics(e2.id)] == [u1.id]

    assert [m.step for m in store.trial_metrics(t1.id)] == [1, 2, 3]
    assert [m.step for m in store.trial_metrics(t1.id, group="validation")] == [1, 2, 3]
    assert store.trial_metrics(t1.id, group="training") == []
    assert [m.values for m in store.trial_metrics(t2.id)] == [{"loss": 1.5, "acc": 0.25}]
    # A later report gets a larger seq than everything before it, store-wide.
    r4 = store.add_metrics(u1.id, "validation", [(2, {"loss": 0.4})])
    assert r4[0].seq > everything[-1].seq
    assert store.add_metrics(t1.id, "validation", []) == []


def check_duplicate_metrics_skipped(store: Store) -> None:
    """A report whose (trial, group, step) exists is skipped; the first one stays."""
    e = store.create_experiment("a", {})
    t = store.create_trial(e.id, 1, {})
    first = store.add_metrics(t.id, "validation", [(1, {"loss": 1.0}), (2, {"loss": 0.5})])
    again = store.add_metrics(
        t.id, "validation", [(2, {"loss": 9.0}), (3, {"loss": 0.25}), (1, {"loss": 9.0})]
    )
    assert [(r.step, r.values) for r in again] == [(3, {"loss": 0.25})]
    assert again[0].seq > first[-1].seq
    # Within one call, the first report of a step wins too.
    within = store.add_metrics(t.id, "validation", [(4, {"loss": 0.2}), (4, {"loss": 9.0})])
    assert [(r.step, r.values) for r in within] == [(4, {"loss": 0.2})]
    # The same step in another group or trial is another report.
    other_group = store.add_metrics(t.id, "training", [(1, {"loss": 2.0})])
    assert len(other_group) == 1
    t2 = store.create_trial(e.id, 2, {})
    assert len(store.add_metrics(t2.id, "validation", [(1, {"loss": 3.0})])) == 1
    stored = store.trial_metrics(t.id, group="validation")
    assert [(m.step, m.values["loss"]) for m in stored] == [(1, 1.0), (2, 0.5), (3, 0.25), (4, 0.2)]
    assert len(store.read_metrics(e.id)) == 6


def check_metrics_batch(store: Store) -> None:
    """``add_metrics_batch``: several trials and groups at once; per entry the rows inserted;
    a row repeated in the batch or already stored is skipped; an unknown trial refuses the
    whole batch and stores nothing."""
    e = store.create_experiment("a", {})
    t1 = store.create_trial(e.id, 1, {})
    t2 = store.create_trial(e.id, 2, {})
    store.add_metrics(t1.id, "validation", [(1, {"loss": 1.0})])
    got = store.add_metrics_batch(
        [
            (t1.id, "validation", [(1, {"loss": 9.0}), (2, {"loss": 0.5})]),
            (t2.id, "validation", [(1, {"loss": 0.7})]),
            (t1.id, "validation", [(2, {"loss": 9.0}), (3, {"loss": 0.25})]),
            (t1.id, "training", [(1, {"loss": 2.0})]),
            (t2.id, "validation", []),
        ]
    )
    assert [[(r.trial_id, r.group, r.step, r.values) for r in rows] for rows in got] == [
        [(t1.id, "validation", 2, {"loss": 0.5})],
        [(t2.id, "validation", 1, {"loss": 0.7})],
        [(t1.id, "validation", 3, {"loss": 0.25})],
        [(t1.id, "training", 1, {"loss": 2.0})],
        [],
    ]
    seqs = [r.seq for rows in got for r in rows]
    assert len(set(seqs)) == len(seqs)
    stored = store.read_metrics(e.id)
    assert {(m.trial_id, m.group, m.step) for m in stored} == {
        (t1.id, "validation", 1),
        (t1.id, "validation", 2),
        (t1.id, "validation", 3),
        (t2.id, "validation", 1),
        (t1.id, "training", 1),
    }
    assert store.add_metrics_batch([]) == []
    try:
        store.add_metrics_batch(
            [(t1.id, "validation", [(10, {"loss": 0.1})]), (10**9, "validation", [(1, {})])]
        )
    except StoreError:
        pass
    else:
        raise AssertionError("a batch naming an unknown trial was accepted")
    assert len(store.read_metrics(e.id)) == len(stored)


def check_nan_inf_roundtrip(store: Store) -> None:
    """NaN and infinities survive in params, metric values, states, events and metadata."""
    weird = {
        "nan": NAN,
        "inf": INF,
        "-inf": -INF,
        "tiny": 5e-324,
        "third": 1 / 3,
        "big": 2**62,
        "neg0": -0.0,
        "flag": True,
        "none": None,
        "text": 'héllo \u2603 "quoted" \\',
        "nested": {"a": [NAN, 1, 2.5, {"b": -INF}]},
    }
    e = store.create_experiment("weird", {"objective": weird})
    _assert_same(store.get_experiment(e.id).config, {"objective": weird}, "experiment config")
    t = store.create_trial(e.id, 1, weird)
    _assert_same(store.get_trial(t.id).params, weird, "params")
    _assert_same(store.list_trials(e.id)[0].params, weird, "listed params")
    store.update_trial(t.id, job={"x": NAN})
    _assert_same(store.get_trial(t.id).job, {"x": NAN}, "job")
    store.add_metrics(t.id, "validation", [(1, {"loss": NAN}), (2, {"loss": INF}), (3, weird)])
    got = store.read_metrics(e.id)
    assert math.isnan(got[0].values["loss"])
    assert got[1].values["loss"] == INF
    _assert_same(got[2].values, weird, "metric values")
    _assert_same([m.values for m in store.trial_metrics(t.id)], [m.values for m in got], "trial")
    store.save_searcher_state(e.id, {"best": NAN, "hist": [INF, -INF]})
    _assert_same(store.load_searcher_state(e.id), {"best": NAN, "hist": [INF, -INF]}, "state")
    store.add_event(e.id, "report", {"v": NAN})
    _assert_same(store.read_events(e.id)[0].data, {"v": NAN}, "event data")
    store.add_checkpoint("cp-nan", t.id, 1, {"score": NAN})
    _assert_same(store.get_checkpoint("cp-nan").metadata, {"score": NAN}, "checkpoint metadata")
    neg0 = store.get_trial(t.id).params["neg0"]
    assert math.copysign(1.0, neg0) == -1.0, "-0.0 lost its sign"


# -- searcher snapshots and events ------------------------------------------------------------
def check_searcher_state(store: Store) -> None:
    """Save, load and overwrite the searcher snapshot, one per experiment."""
    a = store.create_experiment("a", {})
    b = store.create_experiment("b", {})
    assert store.load_searcher_state(a.id) is None
    state = {"rungs": [[1, 0.5], [2, 0.25]], "rng": [1, 2, 3], "version": 1}
    store.save_searcher_state(a.id, state)
    _assert_same(store.load_searcher_state(a.id), state, "loaded state")
    assert store.load_searcher_state(b.id) is None
    store.save_searcher_state(a.id, {"version": 2})
    _assert_same(store.load_searcher_state(a.id), {"version": 2}, "overwritten state")
    store.save_searcher_state(b.id, {"version": 7})
    _assert_same(store.load_searcher_state(a.id), {"version": 2}, "state of a")
    _assert_same(store.load_searcher_state(b.id), {"version": 7}, "state of b")


def check_events_cursor(store: Store) -> None:
    """Events are appended and read by cursor, per experiment."""
    a = store.create_experiment("a", {})
    b = store.create_experiment("b", {})
    assert store.read_events(a.id) == []
    e1 = store.add_event(a.id, "trial_created", {"trial": 1})
    assert isinstance(e1, EventRecord)
    assert (e1.experiment_id, e1.kind, e1.data) == (a.id, "trial_created", {"trial": 1})
    assert _near_now(e1.time)
    store.add_event(b.id, "other", {})
    e2 = store.add_event(a.id, "report", {"trial": 1, "step": 3})
    e3 = store.add_event(a.id, "exited", {"trial": 1, "reason": "COMPLETED"})
    assert e1.seq < e2.seq < e3.seq
    got = store.read_events(a.id)
    assert [e.seq for e in got] == [e1.seq, e2.seq, e3.seq]
    for g, made in zip(got, (e1, e2, e3), strict=True):
        _assert_same(g, made, "read_events record")
    assert [e.kind for e in store.read_events(a.id, after=e1.seq)] == ["report", "exited"]
    assert store.read_events(a.id, after=e3.seq) == []
    assert [e.kind for e in store.read_events(b.id)] == ["other"]


# -- checkpoints ------------------------------------------------------------------------------
def check_checkpoints(store: Store) -> None:
    """Add (idempotent on uuid), get, list by progress, change state."""
    e = store.create_experiment("a", {})
    t = store.create_trial(e.id, 1, {})
    other = store.create_trial(e.id, 2, {})
    assert store.list_checkpoints(t.id) == []
    c2 = store.add_checkpoint("uuid-b", t.id, 20, {"framework": "torch", "files": ["a.pt"]})
    c1 = store.add_checkpoint("uuid-a", t.id, 10, {})
    assert isinstance(c1, CheckpointRecord)
    assert (c2.uuid, c2.trial_id, c2.steps_completed, c2.state) == ("uuid-b", t.id, 20, "COMPLETED")
    assert c2.metadata == {"framework": "torch", "files": ["a.pt"]} and _near_now(c2.created_at)
    _assert_same(store.get_checkpoint("uuid-b"), c2, "get_checkpoint")
    assert [c.uuid for c in store.list_checkpoints(t.id)] == ["uuid-a", "uuid-b"]
    assert store.list_checkpoints(other.id) == []
    # A retried report of the same checkpoint changes nothing.
    _assert_same(
        store.add_checkpoint("uuid-b", t.id, 20, {"framework": "torch", "files": ["a.pt"]}),
        c2,
        "re-add",
    )
    assert len(store.list_checkpoints(t.id)) == 2
    try:
        store.add_checkpoint("uuid-b", other.id, 5, {})
    except StoreError as exc:
        assert "uuid-b" in str(exc)
    else:
        raise AssertionError("a uuid reused for another trial was accepted")
    d = store.set_checkpoint_state("uuid-a", "DELETED")
    assert d.state == "DELETED" and d.uuid == "uuid-a" and d.steps_completed == 10
    assert store.get_checkpoint("uuid-a").state == "DELETED"
    assert [c.state for c in store.list_checkpoints(t.id)] == ["DELETED", "COMPLETED"]


# -- errors -----------------------------------------------------------------------------------
def check_unknown_ids(store: Store) -> None:
    """Every method given an unknown id raises StoreError naming that id."""
    e = store.create_experiment("a", {})
    t = store.create_trial(e.id, 1, {})
    bad_e, bad_t, bad_c = 424242, 535353, "no-such-uuid"
    _raises_store_error(store.get_experiment, bad_e, names=bad_e)
    _raises_store_error(store.update_experiment, bad_e, state=PAUSED, names=bad_e)
    _raises_store_error(store.update_experiment, bad_e, names=bad_e)
    _raises_store_error(store.update_experiment, bad_e, archived=True, names=bad_e)
    _raises_store_error(store.delete_experiment, bad_e, names=bad_e)
    _raises_store_error(store.create_trial, bad_e, 1, {}, names=bad_e)
    _raises_store_error(store.list_trials, bad_e, names=bad_e)
    _raises_store_error(store.get_trial, bad_t, names=bad_t)
    _raises_store_error(store.update_trial, bad_t, state=RUNNING, names=bad_t)
    _raises_store_error(store.update_trial, bad_t, expect_state=PENDING, state=RUNNING, names=bad_t)
    _raises_store_error(store.update_trial, bad_t, names=bad_t)
    _raises_store_error(store.add_metrics, bad_t, "validation", [(1, {"loss": 1.0})], names=bad_t)
    _raises_store_error(store.add_metrics, bad_t, "validation", [], names=bad_t)
    _raises_store_error(store.read_metrics, bad_e, names=bad_e)
    _raises_store_error(store.read_metrics, bad_e, after=5, group="validation", names=bad_e)
    _raises_store_error(store.trial_metrics, bad_t, names=bad_t)
    _raises_store_error(store.save_searcher_state, bad_e, {"x": 1}, names=bad_e)
    _raises_store_error(store.load_searcher_state, bad_e, names=bad_e)
    _raises_store_error(store.add_event, bad_e, "kind", {}, names=bad_e)
    _raises_store_error(store.read_events, bad_e, names=bad_e)
    _raises_store_error(store.add_checkpoint, "cp", bad_t, 1, {}, names=bad_t)
    _raises_store_error(store.get_checkpoint, bad_c, names=bad_c)
    _raises_store_error(store.list_checkpoints, bad_t, names=bad_t)
    _raises_store_error(store.set_checkpoint_state, bad_c, "DELETED", names=bad_c)
    # Nothing was written by the failed calls, and the store still works.
    assert store.list_trials(e.id) == [store.get_trial(t.id)]
    assert store.read_metrics(e.id) == [] and store.read_events(e.id) == []
    assert store.load_searcher_state(e.id) is None
    assert [x.id for x in store.list_experiments()] == [e.id]


def check_close_idempotent(store: Store) -> None:
    """``close`` may be called twice."""
    store.create_experiment("a", {})
    store.close()
    store.close()


# -- leases -----------------------------------------------------------------------------------
def _dead_holder() -> str:
    """The holder string of a process on this host that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process_start_time(proc.pid)
    proc.kill()
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}:{started}"


def check_leases(store: Store) -> None:
    """Tokens grow by one per acquisition; a live lease is refused to another holder, naming
    it; renewals keep it; an expired or released lease is taken over; the loser is fenced."""
    e = store.create_experiment("leased", {})
    other = store.create_experiment("other", {})
    assert store.get_lease(e.id) is None
    me = this_holder()
    first = store.acquire_lease(e.id, me, 60)
    assert first >= 1 and store.fence(e.id) == first
    lease = store.get_lease(e.id)
    assert lease is not None and (lease.holder, lease.token) == (me, first)
    assert 50 < lease.expires_at - time.time() <= 60
    try:
        store.acquire_lease(e.id, "elsewhere:1:1", 60)
    except LeaseHeld as exc:
        assert str(os.getpid()) in str(exc) and exc.holder == me, str(exc)
        assert exc.expires_at == lease.expires_at
    else:
        raise AssertionError("a live lease was handed to a second holder")
    store.renew_lease(e.id, first, 0.3)
    store.create_trial(e.id, 1, {})  # the holder writes
    time.sleep(0.5)  # expired, nobody took it: the holder may still renew and write
    store.renew_lease(e.id, first, 0.3)
    time.sleep(0.5)
    second = store.acquire_lease(e.id, "elsewhere:1:1", 60)  # expired: taken over
    assert second == first + 1 and store.fence(e.id) == second
    try:
        store.renew_lease(e.id, first, 60)
    except LeaseLost as exc:
        assert str(e.id) in str(exc)
    else:
        raise AssertionError("a superseded token renewed its lease")
    assert store.release_lease(e.id, first) is False
    assert store.release_lease(e.id, second) is True
    assert store.fence(e.id) is None
    released = store.get_lease(e.id)
    assert released is not None and released.holder is None and released.token == second
    assert store.acquire_lease(e.id, me, 60) == second + 1  # released: free at once
    assert store.acquire_lease(other.id, me, 60) == 1  # tokens count per experiment
    _raises_store_error(store.acquire_lease, 99999, me, 60, names=99999)
    _raises_store_error(store.get_lease, 99999, names=99999)


def check_lease_of_dead_local_holder(store: Store) -> None:
    """A live lease whose holder ran on this host and has exited is taken over at once."""
    e = store.create_experiment("orphaned", {})
    token = store.acquire_lease(e.id, _dead_holder(), 600)  # live for 600 s
    assert store.acquire_lease(e.id, this_holder(), 60) == token + 1
    try:  # a live local holder (this process) is respected, even by itself
        store.acquire_lease(e.id, this_holder(), 60)
    except LeaseHeld:
        pass
    else:
        raise AssertionError("took over the lease of a live process")


def check_exclusive_create(store: Store) -> None:
    """``create_experiment(unless=...)`` creates only when no experiment matches."""

    def mine(record: ExperimentRecord) -> bool:
        return record.config.get("door") == "x"

    a = store.create_experiment("a", {"door": "y"}, unless=mine)
    b = store.create_experiment("b", {"door": "x"}, unless=mine)
    try:
        store.create_experiment("c", {"door": "x"}, unless=mine)
    except ExperimentExists as exc:
        assert exc.experiment_id == b.id and str(b.id) in str(exc)
    else:
        raise AssertionError("an exclusive create made a second matching experiment")
    assert [e.id for e in store.list_experiments()] == [a.id, b.id]


CHECKS: list[Callable[[Store], None]] = [
    check_experiments,
    check_archive,
    check_delete_experiment,
    check_trial_numbering,
    check_create_trial_idempotent,
    check_trial_parent,
    check_update_trial,
    check_update_trial_cas,
    check_metrics_cursor,
    check_duplicate_metrics_skipped,
    check_metrics_batch,
    check_nan_inf_roundtrip,
    check_searcher_state,
    check_events_cursor,
    check_checkpoints,
    check_unknown_ids,
    check_close_idempotent,
    check_leases,
    check_lease_of_dead_local_holder,
    check_exclusive_create,
]


def run_all(make_store: Callable[[], Store]) -> None:
    """Run every check, each on a fresh store from ``make_store``."""
    for check in CHECKS:
        store = make_store()
        try:
            check(store)
        finally:
            store.close()


# -- several processes on one database --------------------------------------------------------
SHARED_REQUESTS = 5  # request ids every process replays, as crashed coordinators would


def _trial_worker(
    url: str, experiment_id: int, worker: int, count: int, barrier: Any, results: Any
) -> None:
    try:
        store = open_store(url)
        barrier.wait(60)
        made = []
        for i in range(count):
            if i < SHARED_REQUESTS:  # interleave the replays with the worker's own creations
                t = store.create_trial(experiment_id, i, {"shared": i})
                made.append((t.request_id, t.id, t.number))
            t = store.create_trial(experiment_id, 1000 * (worker + 1) + i, {"w": worker, "i": i})
            made.append((t.request_id, t.id, t.number))
        store.close()
        results.put((worker, made, None))
    except BaseException:  # report it: an exception in a child is otherwise lost
        results.put((worker, [], traceback.format_exc()))


def _open_worker(url: str, worker: int, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(60)
        store = open_store(url)
        e = store.create_experiment(f"w{worker}", {"worker": worker})
        t = store.create_trial(e.id, 1, {})
        store.close()
        results.put((worker, [(e.id, t.id, t.number)], None))
    except BaseException:
        results.put((worker, [], traceback.format_exc()))


def _run_processes(target: Callable[..., None], args: list[tuple[Any, ...]]) -> list[Any]:
    """Start one spawned process per ``args`` entry, release them together, collect results."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, results), daemon=True) for a in args]
    for p in procs:
        p.start()
    out = []
    try:
        for _ in procs:
            worker, made, error = results.get(timeout=180)
            assert error is None, f"worker {worker} failed:\n{error}"
            out.append(made)
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    return out


def check_concurrent_trial_numbers(url: str, processes: int = 4, per_process: int = 15) -> None:
    """Processes creating trials on one experiment at once get distinct, consecutive numbers,
    and replays of the same request ids from every process yield one trial each."""
    store = open_store(url)
    try:
        exp = store.create_experiment("concurrent", {})
        results = _run_processes(
            _trial_worker, [(url, exp.id, w, per_process) for w in range(processes)]
        )
        by_request: dict[int, set[tuple[int, int]]] = {}
        for made in results:
            for request_id, trial_id, number in made:
                by_request.setdefault(request_id, set()).add((trial_id, number))
        for request_id, seen in by_request.items():
            assert len(seen) == 1, f"request {request_id} made several trials: {seen}"
        expected = SHARED_REQUESTS + processes * per_process
        trials = store.list_trials(exp.id)
        assert len(trials) == expected == len(by_request)
        assert [t.number for t in trials] == list(range(1, expected + 1))
        assert len({t.id for t in trials}) == expected
        for t in trials:
            assert by_request[t.request_id] == {(t.id, t.number)}
    finally:
        store.close()


def check_concurrent_open(url: str, processes: int = 4) -> None:
    """Processes opening one new database at once migrate it once and all work."""
    results = _run_processes(_open_worker, [(url, w) for w in range(processes)])

    store = open_store(url)
    try:
        exps = store.list_experiments()
        assert sorted(e.name for e in exps) == sorted(f"w{w}" for w in range(processes))
        assert sorted(r[0][0] for r in results) == sorted(e.id for e in exps)
        assert all(r[0][2] == 1 for r in results)
    finally:
        store.close()


# -- fencing across handles (SQL) ---------------------------------------------------------------
def check_lease_fencing(url: str) -> None:
    """A handle whose lease was taken over by another handle can no longer write anything,
    and nothing it tried is in the store; the new holder writes normally."""
    old, new = open_store(url), open_store(url)
    try:
        e = old.create_experiment("fenced", {})
        kept = old.create_trial(e.id, 1, {})
        old_token = old.acquire_lease(e.id, "host-a:1:1", 0.5)
        try:
            new.acquire_lease(e.id, "host-b:2:2", 60)
        except LeaseHeld as exc:
            assert "host-a" in str(exc)
        else:
            raise AssertionError("a live lease was handed to a second holder")
        old.add_metrics(kept.id, "training", [(1, {"loss": 1.0})])
        time.sleep(1.0)
        new_token = new.acquire_lease(e.id, "host-b:2:2", 60)
        assert new_token == old_token + 1
        writes: list[tuple[str, Callable[[], Any]]] = [
            ("create_trial", lambda: old.create_trial(e.id, 2, {})),
            ("add_metrics", lambda: old.add_metrics(kept.id, "training", [(2, {"loss": 0.5})])),
            ("update_trial", lambda: old.update_trial(kept.id, state=COMPLETED)),
            ("update_experiment", lambda: old.update_experiment(e.id, state=COMPLETED)),
            ("add_event", lambda: old.add_event(e.id, "x", {})),
            ("save_searcher_state", lambda: old.save_searcher_state(e.id, {"s": 1})),
            ("add_checkpoint", lambda: old.add_checkpoint("u-1", kept.id, 1, {})),
            ("create_experiment", lambda: old.create_experiment("late", {})),
            ("renew_lease", lambda: old.renew_lease(e.id, old_token, 60)),
        ]
        for what, write in writes:
            try:
                write()
            except LeaseLost as exc:
                assert "host-b" in str(exc), str(exc)
            else:
                raise AssertionError(f"a fenced handle's {what} went through")
        assert [t.id for t in new.list_trials(e.id)] == [kept.id]
        assert [m.step for m in new.trial_metrics(kept.id)] == [1]
        assert new.get_trial(kept.id).state == kept.state
        assert new.get_experiment(e.id).state == ACTIVE
        assert new.read_events(e.id) == [] and new.load_searcher_state(e.id) is None
        assert new.list_checkpoints(kept.id) == [] and len(new.list_experiments()) == 1
        assert old.release_lease(e.id, old_token) is False
        new.create_trial(e.id, 2, {})  # the holder writes
        new.update_experiment(e.id, state=COMPLETED)
        old.get_experiment(e.id)  # reads stay open to everyone
    finally:
        old.close()
        new.close()


def _lease_worker(url: str, worker: int, barrier: Any, results: Any) -> None:
    try:
        store = open_store(url)
        barrier.wait(60)
        made = []
        try:
            e = store.create_experiment(
                f"w{worker}", {"door": "x"}, unless=lambda r: r.config.get("door") == "x"
            )
            made.append(("created", e.id))
        except ExperimentExists as exc:
            made.append(("exists", exc.experiment_id))
        try:
            made.append(("token", store.acquire_lease(1, f"host:{worker}:1", 60)))
        except LeaseHeld:
            made.append(("held", 0))
        store.close()
        results.put((worker, made, None))
    except BaseException:
        results.put((worker, [], traceback.format_exc()))


def check_concurrent_create_and_lease(url: str, processes: int = 4) -> None:
    """Processes racing to create "the" experiment of a folder create exactly one; racing
    for its lease, exactly one wins."""
    open_store(url).close()  # migrated before the race, as a folder's store is
    results = _run_processes(_lease_worker, [(url, w) for w in range(processes)])
    created = [r[0][1] for r in results if r[0][0] == "created"]
    assert len(created) == 1, results
    assert all(r[0][1] == created[0] for r in results)
    tokens = [r[1][1] for r in results if r[1][0] == "token"]
    assert tokens == [1], results
