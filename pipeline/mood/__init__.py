"""Mood: how the customer feels, from their words and their voice.

In: final transcripts with their audio, and VAD activity of both channels. `sentiment` scores
each final's text (one batching owner for every call), `prosody` measures the voice against the
speaker's own baseline, `conversation` finds talk-over and dead air, `frustration` folds them all
into one score with its reasons; `call_mood` runs them for one call.
Out: `SentimentEvent`, `EmotionEvent`, `SignalEvent`, `TalkStatsEvent`, `FrustrationEvent`.
"""

from pipeline.mood.frustration import find_cues
from pipeline.mood.sentiment import Sentiment, SentimentOwner

__all__ = ["Sentiment", "SentimentOwner", "find_cues"]
