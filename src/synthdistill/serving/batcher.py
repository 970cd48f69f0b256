"""Micro-batching: work items that arrive together run as one batch on one worker thread.

A batch starts when it holds ``max_batch_size`` items or when its oldest item has waited
``max_wait_s``, whichever comes first; an item that waited while every worker was busy goes at once.
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

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    items: Sequence[Any]
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """``await submit(items)`` returns ``run(batch)``'s results for those items, in order.

    ``run`` takes a list and returns a sequence (list or array) of the same length. A request with
    more items than ``max_batch_size`` runs as one batch of its own (the function batches inside).
    With ``split_on_failure``, a batch whose run raises is run again request by request, so an item
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
        workers: int = 1,
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

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        for pending in self._pending:
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("the service is shutting down"))
        self._executor.shutdown(wait=True)

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

    def _take(self) -> list[_Pending]:
        """Whole requests from the front of the queue, up to max_batch_size items (at least one request)."""
        batch = [self._pending.popleft()]
        size = len(batch[0].items)
        while self._pending and size + len(self._pending[0].items) <= self.max_batch_size:
            batch.append(self._pending.popleft())
            size += len(batch[-1].items)
        self.pending_items -= size
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

    async def _run_batch(self, batch: list[_Pending]) -> None:
        items = [item for pending in batch for item in pending.items]
        if self.on_batch is not None:
            self.on_batch(len(items))
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self.run, items)
        except Exception as exc:
            if len(batch) == 1 or not self.split_on_failure:
                for pending in batch:
                    _settle(pending, exc)
                return
            # One request's bad item must not fail the requests batched with it: run each request
            # alone, so each learns only its own outcome.
            log.warning("a %s batch of %d requests failed (%s); running them one by one", self.name, len(batch), exc)
            for pending in batch:
                await self._run_alone(pending)
            return
        start = 0
        for pending in batch:
            end = start + len(pending.items)
            if not pending.future.done():  # a client that went away cancelled its future
                pending.future.set_result(results[start:end])
            start = end

    async def _run_alone(self, pending: _Pending) -> None:
        if pending.future.done():  # its client went away meanwhile
            return
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self.run, list(pending.items))
        except Exception as exc:
            _settle(pending, exc)
        else:
            _settle(pending, results)


def _settle(pending: _Pending, outcome: Any) -> None:
    """Give a request its results, or its exception; a client that went away cancelled its future."""
    if pending.future.done():
        return
    if isinstance(outcome, Exception):
        pending.future.set_exception(outcome)
    else:
        pending.future.set_result(outcome)
