"""The whisper engine: faster-whisper, synchronous, guarded against text invented on silence.

`WhisperEngine.transcribe` runs one pass; `transcribe_batch` runs passes from different calls as
one batch (one encoder call and one beam search, faster-whisper's batched pipeline). The engine is
not thread-bound: `ModelOwner` (`pipeline.speech.asr`) runs it on its threads.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

import numpy as np

from pipeline.runtime import metrics
from pipeline.runtime.models import resolve_model
from pipeline.speech.asr import AsrConfig, AsrResult, PassKind
from pipeline.speech.commit import normalize_word
from pipeline.types import Samples, Word


def cut_repetitions(words: Sequence[Word], max_repeats: int) -> list[Word]:
    """Cut a hallucination loop: an n-gram (n <= 8) repeated back to back over max_repeats times.

    Keeps the first `max_repeats` copies and drops everything after the loop starts repeating.
    """
    norm = [normalize_word(w.text) for w in words]
    for i in range(len(norm)):
        for n in range(1, 9):
            gram = norm[i : i + n]
            if len(gram) < n:
                break
            reps = 1
            while norm[i + reps * n : i + (reps + 1) * n] == gram:
                reps += 1
            if reps > max_repeats:
                return list(words[: i + max_repeats * n])
    return list(words)


class WhisperEngine:
    """faster-whisper with the guards against text invented on silence. Not thread-bound."""

    def __init__(self, config: AsrConfig, progress: Callable[[int, int], None] | None = None):
        from faster_whisper import WhisperModel  # heavy import, only where a model is loaded

        self.config = config
        self.model_path = resolve_model(config.model, config.cache_dir, progress)
        self.model = WhisperModel(
            self.model_path,
            device=config.device,
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
            num_workers=config.workers,
        )
        self._batched = _BatchedWhisper(self) if config.language else None

    def transcribe(self, audio: Samples, kind: PassKind) -> AsrResult:
        c = self.config
        final = kind is PassKind.FINAL
        segments, _info = self.model.transcribe(
            audio,
            language=c.language,
            beam_size=c.beam_size if final else c.interim_beam_size,
            temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if final else 0.0,
            condition_on_previous_text=False,  # no text carried between windows or calls
            no_speech_threshold=c.no_speech_threshold,
            log_prob_threshold=c.log_prob_threshold,
            compression_ratio_threshold=c.compression_ratio_threshold,
            word_timestamps=final,  # interims decode as finals do, only without the alignment
            vad_filter=False,  # the pipeline's VAD already gates what reaches the model
        )
        words: list[Word] = []
        for seg in segments:  # a lazy generator: the work happens here, on this thread
            if (
                seg.no_speech_prob > c.no_speech_threshold
                and seg.avg_logprob < c.log_prob_threshold
            ):
                continue
            if final and seg.words:
                words.extend(
                    Word(w.word.strip(), round(w.start, 3), round(w.end, 3), w.probability)
                    for w in seg.words
                    if w.word.strip()
                )
            else:
                words.extend(Word(t, -1.0, -1.0) for t in seg.text.split())
        return AsrResult(tuple(cut_repetitions(words, c.max_repeats)))

    def transcribe_batch(
        self, audios: Sequence[Samples], kind: PassKind, window_s: float | None = None
    ) -> list[AsrResult]:
        """Several passes of one kind at once (each audio at most 30 s); `window_s` overrides
        the encoder window the config gives."""
        if self._batched is None or (
            len(audios) == 1 and self.config.min_window_s >= 30 and window_s is None
        ):
            return [self.transcribe(audio, kind) for audio in audios]
        return self._batched.run(audios, kind, window_s)


class _BatchedWhisper:
    """faster-whisper's batched pipeline, fed windows from different calls.

    One encoder call and one beam search cover the batch (temperature 0). A final whose text
    fails the guards that trigger whisper's temperature fallback (compression ratio, log
    probability) is run again on its own by `WhisperEngine.transcribe`, with the full fallback,
    so batching costs no accuracy on hard audio.
    """

    def __init__(self, engine: WhisperEngine) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import (
            TranscriptionOptions,
            WhisperModel,
            get_suppressed_tokens,
        )

        self.engine = engine
        model, c = engine.model, engine.config
        self.tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=c.language
        )
        defaults = inspect.signature(WhisperModel.transcribe).parameters  # punctuation to merge
        self.options = {
            kind: TranscriptionOptions(
                beam_size=c.beam_size if kind is PassKind.FINAL else c.interim_beam_size,
                best_of=5,
                patience=1.0,
                length_penalty=1.0,
                repetition_penalty=1.0,
                no_repeat_ngram_size=0,
                log_prob_threshold=c.log_prob_threshold,
                no_speech_threshold=c.no_speech_threshold,
                compression_ratio_threshold=c.compression_ratio_threshold,
                condition_on_previous_text=False,
                prompt_reset_on_temperature=0.5,
                temperatures=[0.0],
                initial_prompt=None,
                prefix=None,
                suppress_blank=True,
                suppress_tokens=get_suppressed_tokens(self.tokenizer, [-1]),
                without_timestamps=True,
                max_initial_timestamp=0.0,
                word_timestamps=kind is PassKind.FINAL,
                prepend_punctuations=defaults["prepend_punctuations"].default,
                append_punctuations=defaults["append_punctuations"].default,
                multilingual=False,
                max_new_tokens=None,
                clip_timestamps="0",
                hallucination_silence_threshold=None,
                hotwords=None,
            )
            for kind in PassKind
        }

    def run(
        self, audios: Sequence[Samples], kind: PassKind, window_s: float | None = None
    ) -> list[AsrResult]:
        from faster_whisper.audio import pad_or_trim

        model, c = self.engine.model, self.engine.config
        if window_s is None:
            longest = max(len(audio) for audio in audios) / 16000
            least = c.min_window_s if kind is PassKind.FINAL else c.interim_min_window_s
            window_s = min(30.0, max(least, math.ceil(longest + 3.0)))
        frames = round(window_s * 100)  # 10 ms mel frames; the encoder halves them
        features = np.stack(
            [pad_or_trim(model.feature_extractor(audio)[..., :-1], frames) for audio in audios]
        )
        chunks = [{"offset": 0.0, "duration": len(audio) / 16000} for audio in audios]
        # a pipeline per batch: it keeps state between calls, and workers share the engine
        from faster_whisper.transcribe import BatchedInferencePipeline

        outputs = BatchedInferencePipeline(model).forward(
            features, self.tokenizer, chunks, self.options[kind]
        )
        results = []
        for audio, segments in zip(audios, outputs, strict=True):
            words: list[Word] = []
            retry = False
            for seg in segments:
                if seg["no_speech_prob"] > c.no_speech_threshold and (
                    seg["avg_logprob"] < c.log_prob_threshold
                ):
                    continue
                if kind is PassKind.FINAL and (
                    seg["compression_ratio"] > c.compression_ratio_threshold
                    or seg["avg_logprob"] < c.log_prob_threshold
                ):
                    retry = True
                    break
                if kind is PassKind.FINAL:
                    words.extend(
                        Word(
                            w["word"].strip(),
                            round(w["start"], 3),
                            round(w["end"], 3),
                            w["probability"],
                        )
                        for w in seg.get("words") or ()
                        if w["word"].strip()
                    )
                else:
                    words.extend(Word(t, -1.0, -1.0) for t in seg["text"].split())
            if retry:
                metrics.ASR_RETRIES.inc()
                results.append(self.engine.transcribe(audio, kind))
            else:
                results.append(AsrResult(tuple(cut_repetitions(words, c.max_repeats))))
        return results
