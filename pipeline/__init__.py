"""Streaming worker: decode/resample, VAD, incremental ASR, events, the Redis bus."""
