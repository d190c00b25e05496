"""Model-based suggestions off the caller's thread (what the coordinator installs)."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ridgeline.samplers import background
from ridgeline.samplers.background import BackgroundSampler
from ridgeline.samplers.base import WAIT, History, Sampler
from ridgeline.space import Continuous, SearchSpace

SPACE = SearchSpace([Continuous("x", [0.0, 1.0])])


class Slow(Sampler):
    """Sleeps, then samples; records the thread it ran on and the time limit it was given."""

    time_limit: float | None = None

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self.threads: list[str] = []

    def propose(self, space: Any, history: History, pending: Any, rng: random.Random) -> Any:
        self.threads.append(threading.current_thread().name)
        if self.delay < 0:
            raise ValueError("broken model")
        time.sleep(self.delay)
        return space.sample(rng)


@pytest.fixture
def worker():
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="suggest")
    woken = threading.Event()
    background.install(executor, woken.set, 3.0)
    yield woken
    background.uninstall()
    executor.shutdown()


def test_without_a_worker_it_answers_in_place() -> None:
    inner = Slow(0.0)
    out = BackgroundSampler(inner).propose(SPACE, History(), [], random.Random(0))
    assert isinstance(out, dict) and inner.threads == [threading.current_thread().name]


def test_with_a_worker_it_answers_wait_at_once_then_the_suggestion(worker) -> None:
    inner = Slow(0.2)
    sampler = BackgroundSampler(inner)
    rng = random.Random(0)
    start = time.perf_counter()
    assert sampler.propose(SPACE, History(), [], rng) == WAIT
    assert time.perf_counter() - start < 0.05  # the caller's loop is not held up
    assert sampler.propose(SPACE, History(), [], rng) == WAIT  # one computation at a time
    assert worker.wait(5)
    out = sampler.propose(SPACE, History(), [], rng)
    assert isinstance(out, dict) and inner.threads[0].startswith("suggest")
    assert inner.time_limit == 3.0  # the driver's cap reached the model
    # The same seed gives the same suggestion as an in-place run would draw from its child rng.
    same = random.Random(random.Random(0).getrandbits(64))
    assert out == SPACE.sample(same)


def test_errors_surface_on_the_next_call(worker) -> None:
    sampler = BackgroundSampler(Slow(-1))
    assert sampler.propose(SPACE, History(), [], random.Random(0)) == WAIT
    assert worker.wait(5)
    with pytest.raises(ValueError, match="broken model"):
        sampler.propose(SPACE, History(), [], random.Random(0))
