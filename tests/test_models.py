"""Offline model resolution: assembly of whisper base from its two packages, tiny.en, paths."""

import dataclasses
import os

import pytest

from pipeline.runtime.models import SPLIT_MODELS, ModelError, assemble, resolve_model


def test_base_is_assembled_once_checked_and_atomic(tmp_path):
    seen = []
    path = resolve_model("base", tmp_path, lambda done, total: seen.append((done, total)))
    model = SPLIT_MODELS["base"]
    assert os.path.getsize(os.path.join(path, "model.bin")) == model.size
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert os.path.isfile(os.path.join(path, f))
    assert seen and seen[-1] == (model.size, model.size)  # progress reached the end
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".whisper-base.lock")] == [
        os.path.basename(path)
    ]  # no temporary directory left behind
    mtime = os.path.getmtime(os.path.join(path, "model.bin"))
    seen.clear()
    assert resolve_model("base", tmp_path, lambda d, t: seen.append(d)) == path
    assert seen == [] and os.path.getmtime(os.path.join(path, "model.bin")) == mtime


def test_a_truncated_model_is_rebuilt(tmp_path):
    path = resolve_model("base", tmp_path)
    with open(os.path.join(path, "model.bin"), "r+b") as f:
        f.truncate(1000)
    assert resolve_model("base", tmp_path) == path
    assert os.path.getsize(os.path.join(path, "model.bin")) == SPLIT_MODELS["base"].size


def test_a_hash_mismatch_is_refused_and_leaves_nothing(tmp_path):
    bad = dataclasses.replace(SPLIT_MODELS["base"], sha256="0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        assemble(bad, tmp_path)
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_tiny_en_comes_from_its_package():
    path = resolve_model("tiny.en")
    assert os.path.getsize(os.path.join(path, "model.bin")) == 75_537_502


def test_directory_and_hub_names(tmp_path):
    with pytest.raises(ModelError, match=r"model\.bin"):
        resolve_model(str(tmp_path))
    (tmp_path / "model.bin").write_bytes(b"x")
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ModelError, match="no such directory"):
        resolve_model("./no/such/model")
    assert resolve_model("Systran/faster-distil-whisper-large-v3") == (
        "Systran/faster-distil-whisper-large-v3"
    )


def test_tiny_en_transcribes_offline(tmp_path):
    """The light alternative really runs: tiny.en on a turn of the sample call."""
    import numpy as np

    from agent_assist.cli import sample_call
    from agent_assist.replay import read_wav
    from pipeline.speech.asr import AsrConfig, PassKind
    from pipeline.speech.audio import Resampler, decode_interleaved
    from pipeline.speech.whisper import WhisperEngine
    from pipeline.types import Encoding
    from tests.conftest import timeline, wer

    wav = read_wav(sample_call())
    pcm = decode_interleaved(wav.data, Encoding.MULAW, 2)[:, 1].copy()
    who, start, end = timeline()[0]
    assert who == "agent"
    r = Resampler(8000)
    clip = np.concatenate([r.push(pcm[int(start * 8000) - 800 : int(end * 8000) + 800]), r.flush()])
    engine = WhisperEngine(AsrConfig(model="tiny.en", language="en", workers=1))
    result = engine.transcribe(clip.astype(np.float32) / 32768, PassKind.FINAL)
    reference = "thank you for calling northwind support, how can i help you today"
    assert wer(reference, result.text) < 0.35
    assert all(0 <= w.start <= w.end for w in result.words)
