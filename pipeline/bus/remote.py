"""The model services of a gateway whose models run in worker processes (`pipeline.bus.worker`).

`RemoteAsr` and `RemoteSentiment` have the interfaces of the local owners (`AsrService`, the
sentiment owner's `submit`), so a call runs the same code in either shape; each pass becomes a
job on Redis Streams (`pipeline.bus.jobs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from pipeline.bus.jobs import SENTIMENT, JobClient, JobFailed, pcm16, words_of
from pipeline.mood import Sentiment
from pipeline.runtime import metrics
from pipeline.speech import AsrResult, PassKind
from pipeline.types import Samples


class RemoteAsr:
    """The ASR service of a gateway whose models run in workers: `ModelOwner`'s interface."""

    def __init__(self, client: JobClient, final_slots: int = 64, max_interim_scale: float = 4.0):
        self._client = client
        self._final_slots = asyncio.Semaphore(final_slots)
        self._max_scale = max_interim_scale
        self._scale = 1.0

    @property
    def interim_scale(self) -> float:
        """The interim cadence the workers ask for (their model owner's, sent with results)."""
        return self._scale

    async def transcribe(
        self, kind: PassKind, stream: tuple[str, str], audio: Samples
    ) -> AsrResult | None:
        cfg = self._client.config
        fields: dict[str, bytes | str] = {"stream": json.dumps(stream), "audio": pcm16(audio)}
        if kind is PassKind.FINAL:
            async with self._final_slots:  # back-pressure on this gateway's calls
                result = await self._client.call(kind.value, fields, cfg.final_timeout_s)
        else:
            deadline = time.time() + cfg.interim_timeout_s
            try:
                result = await self._client.call(
                    kind.value, fields, cfg.interim_timeout_s + 2.0, deadline
                )
            except JobFailed:
                metrics.INTERIMS_SHED.labels("timeout").inc()
                return None
            with contextlib.suppress(KeyError, ValueError):
                self._scale = min(self._max_scale, max(1.0, float(result[b"scale"])))
        data = json.loads(result[b"data"])
        if data is None:
            return None
        return AsrResult(words_of(data))


class RemoteSentiment:
    """The sentiment service of a gateway whose models run in workers: the owner's `submit`."""

    def __init__(self, client: JobClient) -> None:
        self._client = client

    async def submit(self, text: str) -> Sentiment:
        result = await self._client.call(
            SENTIMENT, {"text": text}, self._client.config.sentiment_timeout_s
        )
        return Sentiment.from_probs(json.loads(result[b"data"]))

    def close(self) -> None:
        pass
