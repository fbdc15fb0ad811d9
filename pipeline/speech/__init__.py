"""Speech: one channel's audio in, transcripts out.

In: PCM at the call's rate. `audio` resamples it to 16 kHz, `vad` cuts it into utterances, `asr`
runs whisper on one owner for every call (batched, finals first, `whisper` the engine), `commit`
keeps what two interim passes agree on, and `stream` turns it into interim and final
`TranscriptEvent`s, with personal data masked by `redact` before they leave.
Out: `TranscriptEvent`s, and each final's audio for the mood stage.
"""

from pipeline.speech.asr import AsrConfig, AsrResult, AsrService, ModelOwner, PassKind

__all__ = ["AsrConfig", "AsrResult", "AsrService", "ModelOwner", "PassKind"]
