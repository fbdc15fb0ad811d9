"""The sentiment model (the real built-in one, offline), label mapping, the rolling score, and the
batching owner that serves every call from one thread."""

import asyncio
import json
import threading

import pytest

from pipeline.mood.sentiment import (
    LABELS,
    RollingSentiment,
    Sentiment,
    SentimentConfig,
    SentimentModel,
    SentimentModelError,
    label_map,
)
from pipeline.runtime import metrics
from pipeline.runtime.owner import BatchConfig, BatchOwner


@pytest.fixture(scope="module")
def model() -> SentimentModel:
    return SentimentModel(SentimentConfig())


CLEAR = [
    ("oh that's perfect, thank you so much for sorting it out", "positive"),
    ("you've been really helpful, have a lovely day", "positive"),
    ("this is ridiculous, it's the third time i've called about this", "negative"),
    ("i'm fed up, if it isn't fixed today i want to cancel my contract", "negative"),
    ("my account number is four five six seven", "neutral"),
    ("can you confirm the delivery address please", "neutral"),
]


def test_builtin_model_loads_offline_and_reads_clear_cases(model):
    got = model.predict([t for t, _ in CLEAR])
    assert [s.label for s in got] == [label for _, label in CLEAR]
    for s in got:
        assert abs(s.negative + s.neutral + s.positive - 1) < 1e-4
        assert s.score == pytest.approx(s.positive - s.negative)


def test_case_does_not_matter_and_batches_match_singles(model):
    texts = [t for t, _ in CLEAR]
    batched = model.predict(texts)
    single = [model.predict([t.upper()])[0] for t in texts]
    for a, b in zip(batched, single, strict=True):
        assert a.label == b.label and a.positive == pytest.approx(b.positive, abs=1e-4)
    assert model.predict([]) == []


def test_any_sequence_classification_directory_works(model, tmp_path):
    """A user's own checkpoint, here the built-in one saved with other label names."""
    model.model.config.id2label = {0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"}
    model.model.save_pretrained(tmp_path)
    model.tokenizer.save_pretrained(tmp_path)
    model.model.config.id2label = dict(enumerate(LABELS))
    other = SentimentModel(SentimentConfig(model=str(tmp_path)))
    assert [s.label for s in other.predict([t for t, _ in CLEAR])] == [lab for _, lab in CLEAR]
    assert json.loads((tmp_path / "config.json").read_text())["id2label"]["0"] == "NEGATIVE"


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(SentimentModelError, match="no such directory"):
        SentimentModel(SentimentConfig(model=str(tmp_path / "nope")))


@pytest.mark.parametrize(
    ("id2label", "fold"),
    [
        ({0: "LABEL_0", 1: "LABEL_1"}, [[1, 0], [0, 0], [0, 1]]),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        ({0: "POSITIVE", 1: "NEGATIVE"}, [[0, 1], [0, 0], [1, 0]]),
        ({0: "neg", 1: "neu", 2: "pos"}, [[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        (
            {i: f"{i + 1} star{'s' if i else ''}" for i in range(5)},
            [[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 1]],
        ),
    ],
)
def test_label_names_fold_onto_three_classes(id2label, fold):
    assert label_map(id2label) == fold


def test_unknown_labels_are_refused():
    with pytest.raises(SentimentModelError, match="joy"):
        label_map({0: "joy", 1: "anger"})


def test_sentiment_label_is_the_most_probable_class():
    s = Sentiment.from_probs((0.2, 0.3, 0.5))
    assert (s.label, s.score) == ("positive", pytest.approx(0.3))


def test_rolling_sentiment_is_time_decayed_with_its_trend():
    r = RollingSentiment(half_life_s=10.0)
    assert r.add(0.0, -1.0) == (-1.0, 0.0)
    rolling, trend = r.add(10.0, 1.0)  # the first turn now weighs 0.5
    assert rolling == pytest.approx((-0.5 + 1.0) / 1.5)
    assert trend == pytest.approx(rolling + 1.0)


async def test_owner_batches_requests_from_many_calls_off_the_loop():
    seen: list[tuple[int, int]] = []  # (batch size, thread)
    release = threading.Event()

    def run(items):
        release.wait(5)
        seen.append((len(items), threading.get_ident()))
        return [x * 2 for x in items]

    owner = BatchOwner("test", run, BatchConfig(max_batch=8, max_wait_s=0.05))
    first = asyncio.create_task(owner.submit(0))
    await asyncio.sleep(0.1)  # the owner is now busy with the first batch
    rest = [asyncio.create_task(owner.submit(i)) for i in range(1, 11)]
    await asyncio.sleep(0.05)
    release.set()
    assert await asyncio.gather(first, *rest) == [2 * i for i in range(11)]
    assert [n for n, _ in seen] == [1, 8, 2]  # waiting requests went together, 8 at most
    assert threading.get_ident() not in {t for _, t in seen}
    owner.close()


async def test_owner_failure_reaches_every_caller_and_the_owner_goes_on():
    calls = 0

    def run(items):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("boom")
        return items

    owner = BatchOwner("flaky", run, BatchConfig(max_wait_s=0.0))
    before = metrics.ERRORS.labels("flaky")._value.get()
    with pytest.raises(ValueError, match="boom"):
        await owner.submit(1)
    assert await owner.submit(2) == 2
    assert metrics.ERRORS.labels("flaky")._value.get() == before + 1
    owner.close()


def test_an_untrusted_transcript_pulls_the_sentiment_toward_neutral():
    from pipeline.mood.sentiment import Sentiment, transcript_trust

    sure = Sentiment.from_probs((0.98, 0.01, 0.01))
    assert sure.shrunk(1.0) is sure
    garbled = sure.shrunk(transcript_trust(0.6))  # a third believed
    assert garbled.score == pytest.approx(sure.score / 3, abs=1e-6)
    assert abs(garbled.score) < 0.5 and garbled.label == "neutral"
    assert sure.shrunk(transcript_trust(0.4)).score == 0.0
    assert sum((garbled.negative, garbled.neutral, garbled.positive)) == pytest.approx(1.0)
