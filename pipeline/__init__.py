"""The streaming worker: one call's audio in, typed events out.

    gateway (an ingest protocol) --CallInfo + PCM--> session.CallSession
        speech/   resample, VAD, incremental whisper, commit policy, PII redaction --> transcripts
        mood/     sentiment, prosody, talk-over and dead air, frustration          --> mood events
        assist/   alert rules, knowledge suggestions, post-call summary            --> alerts
    --> bus/  (Redis: pub/sub, call state, wall board, model jobs for worker processes) --> panels

`types` holds the value types and events every stage shares and imports nothing of the project;
`runtime` holds what every stage runs on (model owner threads, packaged models, metrics).
Stages import each other only through a package's own names (`from pipeline.mood import ...`);
`tests/test_architecture.py` checks these rules, and `docs/architecture.md` draws them.
"""
