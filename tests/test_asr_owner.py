"""The model owner's queue policy. A controllable transcriber stands in for whisper here because
what is under test is the scheduling (order, shedding, back-pressure, threads), not recognition;
the real model runs through the same owner in the end-to-end tests."""

import asyncio
import threading

import numpy as np
import pytest

from pipeline.runtime import metrics
from pipeline.speech.asr import (
    AsrConfig,
    AsrResult,
    ModelOwner,
    PassKind,
    Scheduler,
)
from pipeline.speech.whisper import cut_repetitions
from pipeline.types import Word

AUDIO = np.zeros(1600, dtype=np.float32)


class Gate:
    """A transcriber that blocks until released, recording what ran, where and in which order."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.ran: list[tuple[PassKind, float]] = []
        self.threads: set[int] = set()

    def __call__(self, audio, kind):
        self.release.wait(10)
        self.threads.add(threading.get_ident())
        self.ran.append((kind, float(audio[0])))
        return AsrResult((Word(f"{kind.value}{audio[0]:g}", 0.0, 0.1),))


def tagged(tag: float) -> np.ndarray:
    a = AUDIO.copy()
    a[0] = tag
    return a


def shed(reason: str) -> float:
    return metrics.INTERIMS_SHED.labels(reason)._value.get()


async def test_finals_run_before_interims_and_off_the_event_loop():
    gate = Gate()
    owner = ModelOwner(gate, AsrConfig(workers=1))
    blocker = asyncio.create_task(owner.transcribe(PassKind.FINAL, ("c", "x"), tagged(0)))
    await asyncio.sleep(0.05)  # the worker is now busy with the blocker
    interim = asyncio.create_task(owner.transcribe(PassKind.INTERIM, ("c", "a"), tagged(1)))
    final = asyncio.create_task(owner.transcribe(PassKind.FINAL, ("c", "b"), tagged(2)))
    await asyncio.sleep(0.05)
    gate.release.set()
    await asyncio.gather(blocker, interim, final)
    assert [tag for _, tag in gate.ran] == [0, 2, 1]  # the final overtook the earlier interim
    assert threading.get_ident() not in gate.threads
    owner.close()


async def test_newer_interim_of_a_stream_supersedes_the_queued_one():
    gate = Gate()
    owner = ModelOwner(gate, AsrConfig(workers=1))
    before = shed("superseded")
    busy = asyncio.create_task(owner.transcribe(PassKind.FINAL, ("c", "x"), tagged(0)))
    await asyncio.sleep(0.05)
    old = asyncio.create_task(owner.transcribe(PassKind.INTERIM, ("c", "a"), tagged(1)))
    await asyncio.sleep(0.01)
    new = asyncio.create_task(owner.transcribe(PassKind.INTERIM, ("c", "a"), tagged(2)))
    await asyncio.sleep(0.01)
    gate.release.set()
    assert await old is None
    assert (await new).text == "interim2"
    await busy
    assert shed("superseded") == before + 1
    owner.close()


async def test_full_interim_lane_sheds_the_oldest_and_counts_it():
    gate = Gate()
    owner = ModelOwner(gate, AsrConfig(workers=1, interim_queue_size=2))
    before = shed("queue_full")
    busy = asyncio.create_task(owner.transcribe(PassKind.FINAL, ("c", "x"), tagged(0)))
    await asyncio.sleep(0.05)
    tasks = []
    for i in range(4):
        tasks.append(
            asyncio.create_task(owner.transcribe(PassKind.INTERIM, ("c", str(i)), tagged(i + 1)))
        )
        await asyncio.sleep(0.01)
    gate.release.set()
    results = await asyncio.gather(*tasks)
    await busy
    assert results[0] is None and results[1] is None
    assert [r.text for r in results[2:]] == ["interim3", "interim4"]
    assert shed("queue_full") == before + 2
    owner.close()


async def test_finals_are_never_dropped_when_their_lane_is_full():
    gate = Gate()
    owner = ModelOwner(gate, AsrConfig(workers=1, final_queue_size=2))
    tasks = [
        asyncio.create_task(owner.transcribe(PassKind.FINAL, ("c", "a"), tagged(i)))
        for i in range(10)
    ]
    await asyncio.sleep(0.05)
    assert owner.depth[0] <= 2  # the rest wait outside the queue: back-pressure, not loss
    gate.release.set()
    results = await asyncio.gather(*tasks)
    assert [r.text for r in results] == [f"final{i}" for i in range(10)]
    owner.close()


async def test_stale_interims_are_shed_as_late():
    gate = Gate()
    owner = ModelOwner(gate, AsrConfig(workers=1, interim_max_wait_s=0.05))
    before = shed("late")
    busy = asyncio.create_task(owner.transcribe(PassKind.FINAL, ("c", "x"), tagged(0)))
    await asyncio.sleep(0.02)
    interim = asyncio.create_task(owner.transcribe(PassKind.INTERIM, ("c", "a"), tagged(1)))
    await asyncio.sleep(0.2)
    gate.release.set()
    assert await interim is None
    await busy
    assert shed("late") == before + 1
    owner.close()


async def test_a_failing_pass_reaches_its_caller_and_the_owner_goes_on():
    calls = 0

    def flaky(audio, kind):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return AsrResult(())

    owner = ModelOwner(flaky, AsrConfig(workers=1))
    with pytest.raises(RuntimeError):
        await owner.transcribe(PassKind.FINAL, ("c", "a"), AUDIO)
    assert (await owner.transcribe(PassKind.FINAL, ("c", "a"), AUDIO)).words == ()
    owner.close()


def words(text: str) -> list[Word]:
    return [Word(t, i, i + 1) for i, t in enumerate(text.split())]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("thank you thank you thank you thank you thank you", "thank you thank you thank you"),
        ("no no no no no no no no", "no no no"),
        ("i said no no no", "i said no no no"),
        ("please hold please hold", "please hold please hold"),
        ("the the the the end", "the the the"),
    ],
)
def test_cut_repetitions(text, kept):
    out = cut_repetitions(words(text), max_repeats=3)
    assert " ".join(w.text for w in out) == kept


class BatchGate:
    """A batch transcriber that blocks until released and records each batch it ran."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.batches: list[tuple[PassKind, list[float]]] = []

    def __call__(self, audios, kind):
        self.release.wait(10)
        self.batches.append((kind, [float(a[0]) for a in audios]))
        return [AsrResult((Word(f"{kind.value}{a[0]:g}", 0.0, 0.1),)) for a in audios]


async def test_batched_scheduler_runs_waiting_passes_of_a_kind_together_finals_first():
    gate = BatchGate()
    owner = ModelOwner(None, AsrConfig(workers=1, max_batch=3), batch=gate)
    busy = asyncio.create_task(owner.transcribe(PassKind.FINAL, ("c0", "x"), tagged(0)))
    await asyncio.sleep(0.05)
    tasks = [
        asyncio.create_task(owner.transcribe(PassKind.INTERIM, (f"c{i}", "a"), tagged(10 + i)))
        for i in range(2)
    ]
    tasks += [
        asyncio.create_task(owner.transcribe(PassKind.FINAL, (f"c{i}", "b"), tagged(20 + i)))
        for i in range(4)
    ]
    await asyncio.sleep(0.05)
    gate.release.set()
    results = await asyncio.gather(busy, *tasks)
    assert gate.batches == [
        (PassKind.FINAL, [0]),
        (PassKind.FINAL, [20, 21, 22]),  # up to max_batch finals, across calls
        (PassKind.FINAL, [23]),
        (PassKind.INTERIM, [10, 11]),  # interims only once no final waits
    ]
    assert [r.text for r in results[3:]] == ["final20", "final21", "final22", "final23"]
    owner.close()


async def test_baseline_scheduler_runs_each_pass_alone_first_come_first_served():
    gate = BatchGate()
    owner = ModelOwner(None, AsrConfig(workers=1, scheduler=Scheduler.BASELINE), batch=gate)
    busy = asyncio.create_task(owner.transcribe(PassKind.FINAL, ("c", "x"), tagged(0)))
    await asyncio.sleep(0.05)
    tasks = []
    for i, kind in enumerate([PassKind.INTERIM, PassKind.FINAL, PassKind.INTERIM]):
        tasks.append(asyncio.create_task(owner.transcribe(kind, (f"c{i}", "a"), tagged(i + 1))))
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    gate.release.set()
    results = await asyncio.gather(busy, *tasks)
    assert [b[1] for b in gate.batches] == [[0], [1], [2], [3]]  # nothing overtakes, one by one
    assert all(r is not None for r in results)  # nothing shed, however late
    assert owner.interim_scale == 1.0  # a fixed cadence
    owner.close()


async def test_interim_cadence_stretches_while_interims_wait_and_recovers():
    gate = BatchGate()
    owner = ModelOwner(None, AsrConfig(workers=1, interim_max_wait_s=5.0), batch=gate)
    assert owner.interim_scale == 1.0
    busy = asyncio.create_task(owner.transcribe(PassKind.FINAL, ("c", "x"), tagged(0)))
    await asyncio.sleep(0.02)
    waiting = [
        asyncio.create_task(owner.transcribe(PassKind.INTERIM, (f"c{i}", "a"), tagged(i)))
        for i in range(4)
    ]
    await asyncio.sleep(1.0)  # the interims wait a second for the model
    gate.release.set()
    await asyncio.gather(busy, *waiting)
    loaded = owner.interim_scale
    assert 1.5 < loaded <= owner.config.max_interim_scale
    for i in range(6):  # an idle model: each pass finds nothing else waiting
        await owner.transcribe(PassKind.INTERIM, ("c", "a"), tagged(i))
    assert owner.interim_scale < loaded
    owner.close()


@pytest.mark.parametrize(
    "windows", [{"min_window_s": 4.0}, {"min_window_s": 31.0}, {"interim_min_window_s": 40.0}]
)
def test_encoder_windows_outside_whispers_range_are_refused(windows):
    with pytest.raises(ValueError, match="between 5 and 30 s"):
        AsrConfig(**windows)
