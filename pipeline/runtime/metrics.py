"""Every Prometheus metric of the process, in one place. Labels are bounded: never a call id."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

ACTIVE_CALLS = Gauge("agent_assist_active_calls", "Calls currently streaming")
CALLS = Counter("agent_assist_calls_total", "Calls accepted, by ingest protocol", ["protocol"])
AUDIO_SECONDS = Counter(
    "agent_assist_audio_seconds_total", "Seconds of call audio received", ["channel"]
)
UTTERANCES = Counter("agent_assist_utterances_total", "Utterances found by the VAD", ["channel"])
TRANSCRIPTS = Counter(
    "agent_assist_transcripts_total", "Transcript events emitted", ["channel", "kind"]
)
FINAL_LATENCY = Histogram(
    "agent_assist_final_latency_seconds",
    "From the arrival of an utterance's last audio to its final transcript being emitted",
    buckets=LATENCY_BUCKETS,
)
FIRST_INTERIM_LATENCY = Histogram(
    "agent_assist_first_interim_latency_seconds",
    "From the arrival of an utterance's first audio to its first interim transcript",
    buckets=LATENCY_BUCKETS,
)
ASR_SECONDS = Histogram(
    "agent_assist_asr_inference_seconds", "Time in one ASR batch", ["kind"], buckets=LATENCY_BUCKETS
)
ASR_BATCH_SIZE = Histogram(
    "agent_assist_asr_batch_size",
    "Passes run together in one ASR batch",
    ["kind"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16),
)
ASR_WAIT = Histogram(
    "agent_assist_asr_wait_seconds",
    "Time a pass waited for the model before its batch started",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
ASR_RETRIES = Counter(
    "agent_assist_asr_retries_total",
    "Batched finals run again on their own with temperature fallback (text failed the guards)",
)
ASR_AUDIO_SECONDS = Counter(
    "agent_assist_asr_audio_seconds_total", "Seconds of audio run through ASR passes", ["kind"]
)
ASR_QUEUE_DEPTH = Gauge("agent_assist_asr_queue_depth", "Requests waiting for the model", ["lane"])
INTERIMS_SHED = Counter(
    "agent_assist_interims_shed_total", "Interim passes dropped under load", ["reason"]
)
PROTOCOL_ERRORS = Counter(
    "agent_assist_protocol_errors_total",
    "Ingest connections refused or closed for bad input, by protocol and kind",
    ["protocol", "kind"],
)
MEDIA_GAPS = Counter(
    "agent_assist_media_gap_seconds_total",
    "Audio a protocol said was missing (timestamp gaps, late or lost packets), filled as silence",
    ["protocol"],
)
DISCONNECTS = Counter(
    "agent_assist_client_disconnects_total", "Calls whose client vanished without a stop"
)
BUS_ERRORS = Counter("agent_assist_bus_errors_total", "Failed Redis operations", ["op"])
ERRORS = Counter("agent_assist_errors_total", "Internal errors by kind", ["kind"])
OWNER_QUEUE_DEPTH = Gauge(
    "agent_assist_owner_queue_depth", "Requests waiting for a batching model owner", ["owner"]
)
OWNER_BATCH_SIZE = Histogram(
    "agent_assist_owner_batch_size",
    "Requests run together in one batch by a model owner",
    ["owner"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
OWNER_BATCH_SECONDS = Histogram(
    "agent_assist_owner_batch_seconds",
    "Time a model owner spends on one batch",
    ["owner"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
)
MOOD_SECONDS = Histogram(
    "agent_assist_mood_seconds",
    "Time added to an utterance by a mood stage (sentiment, prosody), from its final transcript",
    ["stage"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
)
SIGNALS = Counter(
    "agent_assist_signals_total", "Conversation signals raised (talk-over, dead air)", ["kind"]
)
FRUSTRATION_ONSETS = Counter(
    "agent_assist_frustration_onsets_total", "Customers whose frustration crossed the threshold"
)
PII_REDACTED = Counter(
    "agent_assist_pii_redacted_total",
    "PII redacted from final transcripts before publishing, by kind",
    ["kind"],
)
ALERTS = Counter("agent_assist_alerts_total", "Alerts raised by the rule engine", ["severity"])
SUGGESTIONS = Counter(
    "agent_assist_suggestions_total", "Knowledge suggestion events sent to agents"
)
PANEL_CLIENTS = Gauge("agent_assist_panel_clients", "Panel WebSocket connections open", ["panel"])
PANEL_REFUSED = Counter(
    "agent_assist_panel_refused_total", "Panel requests refused (bad token, bad path)", ["reason"]
)

# model work over Redis Streams (`--role gateway` and `agent-assist worker`)
JOBS_SENT = Counter(
    "agent_assist_jobs_sent_total", "Model jobs a gateway put on the Redis streams", ["kind"]
)
JOB_SECONDS = Histogram(
    "agent_assist_job_seconds",
    "A model job's round trip from a gateway through Redis and a worker, back to the gateway",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
JOB_TIMEOUTS = Counter(
    "agent_assist_job_timeouts_total", "Model jobs a gateway stopped waiting for", ["kind"]
)
JOB_LATE_RESULTS = Counter(
    "agent_assist_job_late_results_total",
    "Results a gateway dropped: a second copy of a job run twice, or one after its timeout",
)
JOBS_DONE = Counter(
    "agent_assist_jobs_done_total",
    "Model jobs a worker finished, by outcome (ok, error, stale)",
    ["kind", "outcome"],
)
JOBS_CLAIMED = Counter(
    "agent_assist_jobs_claimed_total",
    "Pending model jobs a worker took over from a consumer that stopped answering",
    ["kind"],
)
JOBS_GIVEN_UP = Counter(
    "agent_assist_jobs_given_up_total",
    "Model jobs delivered too often without finishing, answered with an error",
    ["kind"],
)
JOBS_BACKLOG = Gauge(
    "agent_assist_jobs_backlog",
    "Model jobs on a stream not yet finished (waiting plus running), as a worker last saw it",
    ["kind"],
)
