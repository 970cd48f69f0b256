"""The serving micro-batcher on its own: batches formed from concurrent submissions, run on worker threads."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from synthdistill.serving.batcher import MicroBatcher


class Recorder:
    """A batch function that notes how many batches run at once; ``barrier`` makes two wait for each other."""

    def __init__(self, barrier: threading.Barrier | None = None, fail_on: str | None = None) -> None:
        self.barrier, self.fail_on = barrier, fail_on
        self.lock = threading.Lock()
        self.running = self.most_at_once = 0
        self.batches: list[list[str]] = []

    def __call__(self, items: list[str]) -> list[str]:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.batches.append(list(items))
        try:
            if self.barrier is not None:
                self.barrier.wait()  # BrokenBarrierError after its timeout if the other batch never starts
            else:
                time.sleep(0.02)
            if self.fail_on in items:
                raise ValueError(f"cannot do {self.fail_on}")
            return [item.upper() for item in items]
        finally:
            with self.lock:
                self.running -= 1


async def submit_all(batcher: MicroBatcher, requests: list[list[str]]) -> list:
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(r) for r in requests), return_exceptions=True)
    finally:
        await batcher.stop()


def test_two_workers_run_two_batches_at_once():
    run = Recorder(barrier=threading.Barrier(2, timeout=5))
    batcher = MicroBatcher(run, max_batch_size=2, max_wait_s=0.0, workers=2)
    results = asyncio.run(submit_all(batcher, [["a", "b"], ["c", "d"]]))
    assert results == [["A", "B"], ["C", "D"]]
    assert run.most_at_once == 2


def test_one_worker_runs_one_batch_at_a_time_in_full_batches():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch_size=4, max_wait_s=0.0, workers=1)
    results = asyncio.run(submit_all(batcher, [[str(i)] for i in range(10)]))
    assert results == [[str(i)] for i in range(10)]
    assert run.most_at_once == 1
    assert [len(b) for b in run.batches] == [4, 4, 2]  # whole requests, in arrival order


def test_one_worker_never_lets_two_batches_meet():
    run = Recorder(barrier=threading.Barrier(2, timeout=0.3))
    batcher = MicroBatcher(run, max_batch_size=2, max_wait_s=0.0, workers=1)
    results = asyncio.run(submit_all(batcher, [["a", "b"], ["c", "d"]]))
    assert all(isinstance(r, threading.BrokenBarrierError) for r in results)


def test_a_failing_batch_fails_only_its_own_requests():
    run = Recorder(fail_on="bad")
    batcher = MicroBatcher(run, max_batch_size=1, max_wait_s=0.0, workers=2)
    results = asyncio.run(submit_all(batcher, [["ok"], ["bad"], ["fine"]]))
    assert results[0] == ["OK"] and results[2] == ["FINE"]
    assert isinstance(results[1], ValueError) and "cannot do bad" in str(results[1])


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers must be at least 1"):
        MicroBatcher(Recorder(), max_batch_size=1, max_wait_s=0.0, workers=0)


def test_a_request_larger_than_a_batch_is_shared_out_and_put_back_in_order():
    run = Recorder()
    batcher = MicroBatcher(run, max_batch_size=4, max_wait_s=0.05, workers=1)
    large = [f"t{i}" for i in range(10)]
    results = asyncio.run(submit_all(batcher, [large, ["x"], ["y"]]))
    assert results == [[item.upper() for item in large], ["X"], ["Y"]]
    assert max(len(b) for b in run.batches) == 4
    assert "x" in run.batches[0] and "y" in run.batches[0]  # the small requests share the first batch
