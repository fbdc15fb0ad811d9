"""One owner thread per model, batching requests from many calls.

Callers `await owner.submit(item)` from any coroutine. The owner's thread takes the first waiting
item, waits up to `max_wait_s` for more (up to `max_batch`), runs the model once on the batch and
settles every caller's future. Inference never runs on the event loop. The queue is bounded: when
`queue_size` items wait, further callers wait for room (back-pressure on their calls) rather than
pile up memory; nothing is dropped.
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


@dataclass(frozen=True, slots=True)
class BatchConfig:
    max_batch: int = 32
    max_wait_s: float = 0.005
    queue_size: int = 256


class BatchOwner(Generic[In, Out]):
    def __init__(
        self, name: str, run: Callable[[Sequence[In]], Sequence[Out]], config: BatchConfig
    ) -> None:
        self.name = name
        self._run = run
        self.config = config
        self._lock = threading.Condition()
        self._queue: deque[tuple[In, Future[Out]]] = deque()
        self._slots = asyncio.Semaphore(config.queue_size)
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"{name}-owner", daemon=True)
        self._thread.start()

    async def submit(self, item: In) -> Out:
        async with self._slots:
            future: Future[Out] = Future()
            with self._lock:
                if self._closed:
                    raise RuntimeError(f"{self.name} owner is closed")
                self._queue.append((item, future))
                metrics.OWNER_QUEUE_DEPTH.labels(self.name).set(len(self._queue))
                self._lock.notify()
            return await asyncio.wrap_future(future)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout=30)

    def _take(self) -> list[tuple[In, Future[Out]]] | None:
        cfg = self.config
        with self._lock:
            while not self._queue:
                if self._closed:
                    return None
                self._lock.wait()
            deadline = time.monotonic() + cfg.max_wait_s
            while len(self._queue) < cfg.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            batch = [self._queue.popleft() for _ in range(min(cfg.max_batch, len(self._queue)))]
            metrics.OWNER_QUEUE_DEPTH.labels(self.name).set(len(self._queue))
            return batch

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            batch = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if not batch:
                continue
            t0 = time.perf_counter()
            try:
                results = self._run([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)}")
            except Exception as exc:
                log.exception("%s batch of %d failed", self.name, len(batch))
                metrics.ERRORS.labels(self.name).inc()
                for _, fut in batch:
                    _settle(fut, exc)
                continue
            metrics.OWNER_BATCH_SIZE.labels(self.name).observe(len(batch))
            metrics.OWNER_BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - t0)
            for (_, fut), result in zip(batch, results, strict=True):
                _settle(fut, result)


def _settle(future: Future[Out], outcome: Out | Exception) -> None:
    try:
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:  # its caller went away meanwhile
        pass
