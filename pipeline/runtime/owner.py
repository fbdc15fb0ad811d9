"""Model owners: the threads that own a model and serve every call, batching their requests.

`OwnerThreads` is what every model owner shares (the speech `ModelOwner`, the sentiment and
sentence-encoder owners): its threads take the next batch under one lock, run it outside the lock,
and settle each caller's future; `close` stops them in order. Inference never runs on the event
loop: callers `await` a future that a thread settles. Each owner decides what the next batch is.

`BatchOwner` is the plain one: callers `await owner.submit(item)`; a thread takes the first
waiting item, waits up to `max_wait_s` for more (up to `max_batch`), runs the model once on the
batch and settles every caller's future. The queue is bounded: when `queue_size` items wait,
further callers wait for room (back-pressure on their calls) rather than pile up memory; nothing
is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Generic, TypeVar

from pipeline.runtime import metrics

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")
Batch = TypeVar("Batch", bound=Sequence[object])


def settle(future: Future[Out], outcome: Out | Exception) -> None:
    """Settle a future that its awaiting caller may have cancelled meanwhile."""
    try:
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:  # its caller went away
        pass


class OwnerThreads(Generic[Batch]):
    """Threads that own one model. Subclasses set up their queues, then call `_start`.

    - `_take()`, with `_lock` held: the next batch, or an empty one when nothing is ready (it may
      `_lock.wait(...)` for more).
    - `_run_batch(batch)`, without the lock: run the model and settle the batch's futures.
    - `_done(batch)`, with the lock held, after each batch; `_closing()` once, when closed.
    """

    def __init__(self, name: str, threads: int = 1) -> None:
        self.name = name
        self._lock = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]

    def _start(self) -> None:
        for t in self._threads:
            t.start()

    def _take(self) -> Batch:
        raise NotImplementedError

    def _run_batch(self, batch: Batch) -> None:
        raise NotImplementedError

    def _done(self, batch: Batch) -> None:
        pass

    def _closing(self) -> None:
        pass

    def _check_open(self) -> None:
        """Refuse new work once closed (call with the lock held)."""
        if self._closed:
            raise RuntimeError(f"{self.name} owner is closed")

    def close(self) -> None:
        """Stop taking work; the threads finish what they hold, then end."""
        with self._lock:
            self._closed = True
            self._closing()
            self._lock.notify_all()
        for t in self._threads:
            t.join(timeout=30)

    def _next(self) -> Batch | None:
        with self._lock:
            while not (batch := self._take()):
                if self._closed:
                    return None
                self._lock.wait()
            return batch

    def _work(self) -> None:
        while (batch := self._next()) is not None:
            try:
                self._run_batch(batch)
            finally:
                with self._lock:
                    self._done(batch)
                    self._lock.notify_all()


@dataclass(frozen=True, slots=True)
class BatchConfig:
    max_batch: int = 32
    max_wait_s: float = 0.005
    queue_size: int = 256


class BatchOwner(OwnerThreads[list[tuple[In, "Future[Out]"]]], Generic[In, Out]):
    def __init__(
        self, name: str, run: Callable[[Sequence[In]], Sequence[Out]], config: BatchConfig
    ) -> None:
        super().__init__(name)
        self._run = run
        self.config = config
        self._queue: deque[tuple[In, Future[Out]]] = deque()
        self._slots = asyncio.Semaphore(config.queue_size)
        self._start()

    async def submit(self, item: In) -> Out:
        async with self._slots:
            future: Future[Out] = Future()
            with self._lock:
                self._check_open()
                self._queue.append((item, future))
                metrics.OWNER_QUEUE_DEPTH.labels(self.name).set(len(self._queue))
                self._lock.notify()
            return await asyncio.wrap_future(future)

    def _take(self) -> list[tuple[In, Future[Out]]]:
        cfg = self.config
        if not self._queue:
            return []
        deadline = time.monotonic() + cfg.max_wait_s
        while len(self._queue) < cfg.max_batch and not self._closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._lock.wait(left)
        batch = [self._queue.popleft() for _ in range(min(cfg.max_batch, len(self._queue)))]
        metrics.OWNER_QUEUE_DEPTH.labels(self.name).set(len(self._queue))
        return batch

    def _run_batch(self, batch: list[tuple[In, Future[Out]]]) -> None:
        batch = [(item, fut) for item, fut in batch if not fut.cancelled()]
        if not batch:
            return
        t0 = time.perf_counter()
        try:
            results = self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)}")
        except Exception as exc:
            log.exception("%s batch of %d failed", self.name, len(batch))
            metrics.ERRORS.labels(self.name).inc()
            for _, fut in batch:
                settle(fut, exc)
            return
        metrics.OWNER_BATCH_SIZE.labels(self.name).observe(len(batch))
        metrics.OWNER_BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - t0)
        for (_, fut), result in zip(batch, results, strict=True):
            settle(fut, result)
