"""Mood: how the customer feels, from their words and their voice.

In: final transcripts with their audio, and VAD activity of both channels. `sentiment` scores
each final's text and each turn's (one batching owner for every call), `turns` gathers a
speaker's finals into turns, `prosody` measures the voice against the speaker's baseline (their
own, blended with typical speech), `conversation` finds talk-over and dead air, `frustration`
folds them all into one score with its reasons and evidence rules; `call_mood` runs them for one
call.
Out: `SentimentEvent`, `TurnSentimentEvent`, `EmotionEvent`, `SignalEvent`, `TalkStatsEvent`,
`FrustrationEvent`.
"""

from pipeline.mood.frustration import find_cues
from pipeline.mood.sentiment import Sentiment, SentimentOwner

__all__ = ["Sentiment", "SentimentOwner", "find_cues"]
