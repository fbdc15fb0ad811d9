"""Retrying a connection: the one backoff of every loop that retries Redis.

Exponential from `BASE_S` up to `CAP_S`, with jitter so that many clients that lost the same
server do not come back in step (redis-py's backoffs; its clients retry their own commands with
`client_backoff`). A `Retrying` belongs to one loop: each failure is logged, counted in
`agent_assist_bus_errors_total{op}` and waited out; a success starts the backoff over.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.backoff import AbstractBackoff, EqualJitterBackoff, ExponentialWithJitterBackoff

from pipeline.runtime import metrics

log = logging.getLogger(__name__)

BASE_S = 0.05
CAP_S = 1.0


def client_backoff() -> AbstractBackoff:
    """The backoff a Redis client retries a dropped connection with."""
    return ExponentialWithJitterBackoff(base=BASE_S, cap=CAP_S)


class Retrying:
    """The failures of one operation (`op`, the metric label) in a loop that keeps trying."""

    def __init__(self, op: str, what: str, base_s: float = BASE_S, cap_s: float = CAP_S) -> None:
        self.op = op
        self.what = what
        self.failures = 0
        self._backoff = EqualJitterBackoff(cap=cap_s, base=base_s)

    def ok(self) -> None:
        self.failures = 0

    async def failed(self, exc: BaseException, until: float | None = None) -> bool:
        """Log and count one failure, then wait before the next try. Returns False at once when
        the next try would come after `until` (`time.monotonic()`): time to give up."""
        metrics.BUS_ERRORS.labels(self.op).inc()
        delay = self._backoff.compute(self.failures)
        self.failures += 1
        if until is not None and time.monotonic() + delay > until:
            return False
        log.warning("%s failed (%s); retrying", self.what, exc)
        await asyncio.sleep(delay)
        return True
