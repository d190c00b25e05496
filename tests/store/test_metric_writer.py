"""The coordinator's metric writer: group commit off the event loop, on every store backend."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from ridgeline.engine.writer import MetricWriter, Rows
from ridgeline.errors import StoreError
from ridgeline.store.base import Store
from ridgeline.store.records import MetricRecord


class CountingStore:
    """A store that counts the transactions the writer asks for (everything else is real)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.commits: list[int] = []

    def add_metrics_batch(self, rows: list[Rows]) -> list[list[MetricRecord]]:
        self.commits.append(len(rows))
        return self.store.add_metrics_batch(rows)


def _writer(store: Store) -> tuple[MetricWriter, CountingStore]:
    counting = CountingStore(store)
    return MetricWriter(counting), counting  # type: ignore[arg-type]


def test_concurrent_requests_share_commits_and_apply_in_order(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    experiment = store.create_experiment("a", {})
    trials = [store.create_trial(experiment.id, i, {}).id for i in range(1, 17)]
    writer, counting = _writer(store)
    applied: list[tuple[int, int, bool]] = []  # (trial, step, new) in the order applied
    requests = 0

    async def send(trial: int, step: int) -> int:
        nonlocal requests
        requests += 1
        rows: list[Rows] = [(trial, "validation", [(step, {"loss": 1.0 / step})])]

        async def apply(stored: list[list[MetricRecord]]) -> int:
            applied.append((trial, step, bool(stored[0])))
            return len(stored[0])

        return await writer.write(rows, apply)

    async def one_trial(trial: int) -> int:
        accepted = 0
        for step in range(1, 21):
            # A retry of the same report races the original (an answer lost on the way).
            first, retry = await asyncio.gather(send(trial, step), send(trial, step))
            accepted += first + retry
        return accepted

    async def main() -> list[int]:
        return await asyncio.gather(*(one_trial(t) for t in trials))

    accepted = asyncio.run(main())
    assert accepted == [20] * len(trials)  # each report accepted exactly once
    stored = Counter((m.trial_id, m.step) for m in store.read_metrics(experiment.id))
    assert len(stored) == 16 * 20 and set(stored.values()) == {1}
    assert len(counting.commits) < requests / 4  # requests waiting together share a commit
    for trial in trials:
        steps = [step for t, step, new in applied if t == trial and new]
        assert steps == list(range(1, 21))  # the searcher sees each trial's reports in order


def test_a_failing_request_fails_alone(make_store: Callable[[], Store]) -> None:
    store = make_store()
    experiment = store.create_experiment("a", {})
    good = [store.create_trial(experiment.id, i, {}).id for i in range(1, 5)]
    writer, counting = _writer(store)

    async def apply(stored: list[list[MetricRecord]]) -> int:
        return sum(len(s) for s in stored)

    async def main() -> list[Any]:
        sends = [writer.write([(t, "validation", [(1, {"loss": 0.5})])], apply) for t in good]
        sends.insert(2, writer.write([(10**9, "validation", [(1, {"loss": 0.5})])], apply))
        return await asyncio.gather(*sends, return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[2], StoreError)
    assert results[:2] + results[3:] == [1, 1, 1, 1]
    assert len(store.read_metrics(experiment.id)) == 4
    assert not writer.busy


def test_a_failing_apply_fails_its_request_only(make_store: Callable[[], Store]) -> None:
    store = make_store()
    experiment = store.create_experiment("a", {})
    trial = store.create_trial(experiment.id, 1, {}).id
    writer = MetricWriter(store)

    async def ok(stored: list[list[MetricRecord]]) -> str:
        return "ok"

    async def broken(stored: list[list[MetricRecord]]) -> str:
        raise ValueError("broken")

    async def main() -> list[Any]:
        return await asyncio.gather(
            writer.write([(trial, "validation", [(1, {})])], broken),
            writer.write([(trial, "validation", [(2, {})])], ok),
            return_exceptions=True,
        )

    first, second = asyncio.run(main())
    assert isinstance(first, ValueError) and second == "ok"
    assert len(store.read_metrics(experiment.id)) == 2  # stored all the same: nothing is lost


@pytest.mark.parametrize("empty", [True, False])
def test_nothing_to_write(make_store: Callable[[], Store], empty: bool) -> None:
    store = make_store()
    trial = store.create_trial(store.create_experiment("a", {}).id, 1, {}).id
    writer = MetricWriter(store)
    rows: list[Rows] = [] if empty else [(trial, "validation", [])]

    async def apply(stored: list[list[MetricRecord]]) -> list[list[MetricRecord]]:
        return stored

    assert asyncio.run(writer.write(rows, apply)) == [[] for _ in rows]
