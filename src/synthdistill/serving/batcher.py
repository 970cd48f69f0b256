"""Micro-batching: work items that arrive together run as one batch on one worker thread.

A batch starts when it holds ``max_batch_size`` items or when its oldest item has waited
``max_wait_s``, whichever comes first; an item that waited while every worker was busy goes at once.
A batch never holds more than ``max_batch_size`` items, and the waiting requests share it: each
gets an equal part (taken in arrival order), so a request of 256 long texts runs as several batches
beside the one-text requests that arrive meanwhile, instead of holding every worker until it is done.
The batch function runs on ``workers`` threads of its own, so the event loop keeps accepting requests
(and filling the next batch) meanwhile, and with two workers one batch runs while the next is formed
and started: a single-threaded ONNX session per batch keeps both cores busy without the threads of
one run waiting on each other at every operator.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    items: Sequence[Any]
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)
    taken: int = 0  # items handed to batches so far
    parts: dict[int, Any] = field(default_factory=dict)  # results by the start of their slice of items

    def add(self, start: int, results: Any) -> None:
        """One slice's results; the request's future gets them all, in order, once every slice is in."""
        self.parts[start] = results
        if sum(len(part) for part in self.parts.values()) < len(self.items):
            return
        parts = [self.parts[start] for start in sorted(self.parts)]
        whole = parts[0] if len(parts) == 1 else _concatenate(parts)
        _settle(self, whole)


def _concatenate(parts: list[Any]) -> Any:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    return [result for part in parts for result in part]


# (request, start, end): the slice of a request's items that goes into one batch.
_Slice = tuple[_Pending, int, int]


class MicroBatcher:
    """``await submit(items)`` returns ``run(batch)``'s results for those items, in order.

    ``run`` takes a list and returns a sequence (list or array) of the same length. A request with
    more items than ``max_batch_size`` runs as several batches, shared with the requests beside it.
    With ``split_on_failure``, a batch whose run raises is run again slice by slice, so an item
    that breaks ``run`` fails only its own request (worth it where a run is cheap and unpaid: the
    student, not the teacher).
    """

    def __init__(
        self,
        run: Callable[[list[Any]], Any],  # a list or an array, sliced per request
        max_batch_size: int,
        max_wait_s: float,
        name: str = "batcher",
        on_batch: Callable[[int], None] | None = None,
        *,
        workers: int,
        split_on_failure: bool = False,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.run, self.max_batch_size, self.max_wait_s = run, max_batch_size, max(0.0, max_wait_s)
        self.name, self.split_on_failure = name, split_on_failure
        self.on_batch = on_batch
        self._pending: deque[_Pending] = deque()
        self.pending_items = 0
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._running: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None
        self._wakeup: asyncio.Event | None = None
        self._full: asyncio.Event | None = None

    def start(self) -> None:
        self._wakeup, self._full = asyncio.Event(), asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self, timeout_s: float | None = None) -> bool:
        """Stop taking batches, let the running ones finish within ``timeout_s`` (None: however
        long), and fail the requests still queued. True when every running batch finished; a batch
        still running then is left to its thread, which nothing waits for."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        finished = True
        if self._running:
            _, unfinished = await asyncio.wait(set(self._running), timeout=timeout_s)
            finished = not unfinished
        for pending in self._pending:
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("the service is shutting down"))
        self._executor.shutdown(wait=finished, cancel_futures=True)
        return finished

    def submit(self, items: Sequence[Any]) -> asyncio.Future:
        """A future of the results for ``items``; never blocks."""
        assert self._wakeup is not None and self._full is not None, "start() the batcher first"
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(items, future))
        self.pending_items += len(items)
        self._wakeup.set()
        if self.pending_items >= self.max_batch_size:
            self._full.set()
        return future

    def _take(self) -> list[_Slice]:
        """Up to max_batch_size items, shared equally among the waiting requests in arrival order
        (at least one item each while there is room); a request whose items are all taken leaves
        the queue, one whose client went away is dropped."""
        batch: list[_Slice] = []
        room = self.max_batch_size
        while self._pending and room:
            share = max(1, room // len(self._pending))
            for pending in list(self._pending):
                if pending.future.done():  # cancelled, or failed in another slice
                    self._pending.remove(pending)
                    self.pending_items -= len(pending.items) - pending.taken
                    continue
                n = min(share, room, len(pending.items) - pending.taken)
                batch.append((pending, pending.taken, pending.taken + n))
                pending.taken += n
                room -= n
                self.pending_items -= n
                if pending.taken == len(pending.items):
                    self._pending.remove(pending)
                if not room:
                    break
        return batch

    async def _loop(self) -> None:
        assert self._wakeup is not None and self._full is not None
        free = asyncio.Semaphore(self.workers)
        while True:
            await free.acquire()  # the next batch forms while every worker is busy
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            wait = self._pending[0].arrived + self.max_wait_s - time.monotonic()
            if self.pending_items < self.max_batch_size and wait > 0:
                self._full.clear()
                try:
                    await asyncio.wait_for(self._full.wait(), wait)
                except TimeoutError:
                    pass
            batch = self._take()
            if self.pending_items < self.max_batch_size:
                self._full.clear()
            task = asyncio.get_running_loop().create_task(self._run_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            task.add_done_callback(lambda _: free.release())

    async def _run_batch(self, batch: list[_Slice]) -> None:
        if not batch:  # every request waiting had gone away
            return
        items = [item for pending, start, end in batch for item in pending.items[start:end]]
        if self.on_batch is not None:
            self.on_batch(len(items))
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self.run, items)
        except Exception as exc:
            if len(batch) == 1 or not self.split_on_failure:
                for pending, _, _ in batch:
                    _settle(pending, exc)
                return
            # One request's bad item must not fail the requests batched with it: run each slice
            # alone, so each request learns only its own outcome.
            log.warning("a %s batch of %d requests failed (%s); running them one by one", self.name, len(batch), exc)
            for piece in batch:
                await self._run_alone(piece)
            return
        offset = 0
        for pending, start, end in batch:
            if not pending.future.done():  # a client that went away cancelled its future
                pending.add(start, results[offset : offset + end - start])
            offset += end - start

    async def _run_alone(self, piece: _Slice) -> None:
        pending, start, end = piece
        if pending.future.done():  # its client went away, or another of its slices failed
            return
        run, items = self.run, list(pending.items[start:end])
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, run, items)
        except Exception as exc:
            _settle(pending, exc)
        else:
            pending.add(start, results)


def _settle(pending: _Pending, outcome: Any) -> None:
    """Give a request its results, or its exception; a client that went away cancelled its future."""
    if pending.future.done():
        return
    if isinstance(outcome, Exception):
        pending.future.set_exception(outcome)
    else:
        pending.future.set_result(outcome)
