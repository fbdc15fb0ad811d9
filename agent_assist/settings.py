"""One typed settings object per process: CLI flags, then `AGENT_ASSIST_*` variables, then defaults.

Each field's flag is `--field-name`, its variable `AGENT_ASSIST_FIELD_NAME` (`agent_assist.flags`).
The README's settings table is generated from these fields (`agent-assist settings --markdown`).
Each component owns its defaults in its frozen config (`VadConfig`, `AsrConfig`, ...): a setting
that is one of its fields (`of`) takes that default, and `Settings` composes the configs (`vad()`,
`asr()`, ...). Only the process's own settings, and the few whose form differs from the
component's (a port that -1 turns off, a comma list), state a default here (`own`).

This module is longer than most: it declares every setting, about 75, each with its help text.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from agent_assist import flags
from agent_assist.flags import of, own
from coach_ui.auth import AuthConfig
from coach_ui.server import PanelConfig
from gateway.calls import DEFAULT_METADATA, INGESTS, GatewayConfig, parse_ingest_keys
from pipeline.assist.call_assist import AssistConfig
from pipeline.assist.knowledge import DEFAULT_KNOWLEDGE
from pipeline.assist.rules import DEFAULT_RULES
from pipeline.bus.client import RedisTls
from pipeline.bus.jobs import JobsConfig
from pipeline.bus.redis_bus import BusConfig
from pipeline.mood.call_mood import MoodConfig
from pipeline.mood.conversation import ConversationConfig
from pipeline.mood.frustration import FrustrationConfig
from pipeline.mood.prosody import ProsodyConfig
from pipeline.mood.sentiment import SentimentConfig
from pipeline.speech.asr import AsrConfig, Scheduler
from pipeline.speech.redact import PiiKind, RedactConfig
from pipeline.speech.stream import StreamConfig
from pipeline.speech.vad import VadConfig

Role = Literal["all", "gateway"]
Device = Literal["cpu", "cuda"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
C = TypeVar("C")


@dataclass(frozen=True)
class Settings:
    role: Role = own(
        "all",
        "What `serve` runs: all (gateway and models in one process) or gateway (models in "
        "`agent-assist worker` processes, reached over Redis Streams)",
    )
    host: str = of(GatewayConfig, "host", "Address the gateway (a worker: its /metrics) listens on")
    port: int = of(GatewayConfig, "port", "Gateway port (0 picks a free one)")
    redis_url: str | None = own(
        None,
        "Redis to publish to; unset starts an embedded redis-server on loopback",
        "REDIS_URL",
        secret=True,
    )
    panel_redis_url: str | None = own(
        None,
        "Redis for the panels, as a read-only user (`agent-assist redis-users`); default: "
        "--redis-url",
        secret=True,
    )
    redis_ca: str | None = of(
        RedisTls, "ca", "rediss:// only: the CA (PEM) that signed Redis's certificate"
    )
    redis_cert: str | None = of(
        RedisTls, "cert", "rediss:// only: a client certificate (PEM), if Redis asks for one"
    )
    redis_key: str | None = of(RedisTls, "key", "rediss:// only: the client certificate's key")
    redis_prefix: str = of(BusConfig, "prefix", "Prefix of every Redis key and channel")
    call_ttl_s: int = of(BusConfig, "call_ttl_s", "Seconds a call's Redis keys live after it ends")
    model: str = of(
        AsrConfig, "model", "Whisper model: base, tiny.en, a CTranslate2 directory or a hub name"
    )
    model_cache: Path | None = of(
        AsrConfig,
        "cache_dir",
        "Where built-in models are assembled (default ~/.cache/agent-assist/models)",
    )
    device: Device = of(AsrConfig, "device", "Inference device: cpu or cuda")
    compute_type: str = of(
        AsrConfig, "compute_type", "CTranslate2 compute type (int8, int8_float16, float16, float32)"
    )
    asr_workers: int = of(
        AsrConfig, "workers", "ASR batches that run at once (threads sharing one model)"
    )
    scheduler: Scheduler = of(
        AsrConfig,
        "scheduler",
        "ASR scheduler: batched (across calls, finals first, adaptive interims) or baseline "
        "(each pass alone, first come first served: the policy of open peers, for comparison)",
    )
    max_batch: int = of(
        AsrConfig, "max_batch", "Most ASR passes of one kind run together in one batch"
    )
    min_window_s: float = of(
        AsrConfig,
        "min_window_s",
        "Whisper's encoder window, s: at least this, longer for longer audio (30 = whisper's own "
        "fixed window; each second less is cheaper, and costs some accuracy)",
    )
    interim_min_window_s: float = of(
        AsrConfig,
        "interim_min_window_s",
        "The same encoder window for interim passes, s (10 is lighter under load; committed "
        "words then vary more from run to run)",
    )
    cpu_threads: int = of(AsrConfig, "cpu_threads", "CPU threads per ASR pass")
    language: str = of(
        AsrConfig, "language", "Spoken language code; empty detects it per utterance"
    )
    beam_size: int = of(AsrConfig, "beam_size", "Beam size of final passes")
    interim_beam_size: int = of(AsrConfig, "interim_beam_size", "Beam size of interim passes")
    no_speech_threshold: float = of(
        AsrConfig,
        "no_speech_threshold",
        "Drop a segment whose no-speech probability is above this (and log-prob low)",
    )
    max_repeats: int = of(
        AsrConfig, "max_repeats", "Cut a word or phrase repeated back to back more often than this"
    )
    interim_interval_s: float = of(
        StreamConfig, "interim_interval_s", "Run an interim pass per this much new speech"
    )
    interim_queue: int = of(
        AsrConfig, "interim_queue_size", "Interim passes that may wait for the model; more are shed"
    )
    final_queue: int = of(
        AsrConfig, "final_queue_size", "Final passes that may wait before calls are paused"
    )
    vad_aggressiveness: int = of(
        VadConfig, "aggressiveness", "webrtcvad mode, 0 (keeps most) to 3 (filters most)"
    )
    vad_min_speech_ms: int = of(
        VadConfig, "min_speech_ms", "Voiced audio needed to start an utterance"
    )
    vad_hangover_ms: int = of(VadConfig, "hangover_ms", "Silence that ends an utterance")
    vad_pad_ms: int = of(
        VadConfig, "pad_ms", "Audio kept before and after the voiced part of an utterance"
    )
    max_utterance_s: float = of(VadConfig, "max_utterance_s", "Longest utterance before it is cut")
    max_frame_bytes: int = of(
        GatewayConfig, "max_frame_bytes", "Largest binary audio frame accepted"
    )
    public_url: str | None = of(
        GatewayConfig,
        "public_url",
        "The gateway's URL as telephony platforms dial it (wss://host), for signatures",
    )
    twilio_auth_token: str | None = of(
        GatewayConfig,
        "twilio_auth_token",
        "Twilio auth token: X-Twilio-Signature must match it (/twilio is closed without it)",
        "TWILIO_AUTH_TOKEN",
        secret=True,
    )
    audiohook_api_key: str | None = of(
        GatewayConfig,
        "audiohook_api_key",
        "Genesys AudioHook API key (X-API-KEY) required (/audiohook is closed without it)",
        secret=True,
    )
    audiohook_client_secret: str | None = of(
        GatewayConfig,
        "audiohook_client_secret",
        "Genesys AudioHook client secret (base64): when set, requests must be signed, each "
        "signature once",
        secret=True,
    )
    ingest_keys: str = own(
        "",
        "Bearer keys of the native protocol, the audio forks and WebRTC offers, "
        "TENANT:SECRET,... (several per tenant while rotating; without any those are closed)",
        secret=True,
    )
    mint_ingest_key: Path | None = own(
        None,
        "With no ingest key configured: make one (tenant default) into this file, mode 0600, "
        "on first start, and use it (the Docker image sets this)",
    )
    ingests: str = own(
        "native,twilio,audiohook,audiofork",
        "WebSocket ingests served (comma-separated; the others answer 404)",
    )
    insecure: bool = own(
        False,
        "Let an ingest without its credential take anyone, and allow that on a non-loopback "
        "address (warned on every start; for trials behind a trusted network only)",
    )
    audiosocket_port: int = own(
        9092, "Asterisk AudioSocket port of customer legs; agent legs on the next (-1: off)"
    )
    audiosocket_allow: str = own(
        "",
        "Comma-separated networks (CIDR) besides loopback whose Asterisk may connect to "
        "AudioSocket, a protocol without credentials",
    )
    metadata_fields: str = own(
        ",".join(sorted(DEFAULT_METADATA)),
        "Call metadata kept, published and logged (Twilio <Parameter>s, AudioHook participant "
        "and customConfig, audio fork and native metadata): these fields only, phone numbers "
        "masked; the rest is dropped",
    )
    webrtc_port: int = own(
        -1, "WebRTC offer/answer endpoint and softphone page port (-1: off; the demo turns it on)"
    )
    mood: bool = own(
        True, "Run the mood stage: sentiment, prosody emotion, conversation signals, frustration"
    )
    sentiment_model: str = of(
        SentimentConfig,
        "model",
        "Sentiment model: minilm-call (built in), a sequence-classification directory or hub "
        "name, or none",
    )
    sentiment_device: Device = of(
        SentimentConfig, "device", "Device of the sentiment model: cpu or cuda"
    )
    sentiment_threads: int = of(SentimentConfig, "threads", "CPU threads of the sentiment model")
    sentiment_temperature: float | None = of(
        SentimentConfig,
        "temperature",
        "Temperature dividing the sentiment model's logits (unset: the built-in one's fitted)",
    )
    sentiment_half_life_s: float = of(
        MoodConfig, "sentiment_half_life_s", "Half-life of a turn in the rolling sentiment"
    )
    prosody_baseline_s: float = of(
        ProsodyConfig,
        "baseline_voiced_s",
        "Eligible voiced speech each speaker's prosody baseline is built on (median of turns)",
    )
    talkover_min_s: float = of(
        ConversationConfig, "talkover_min_s", "Both parties speaking this long is a talk-over"
    )
    dead_air_min_s: float = of(
        ConversationConfig, "dead_air_min_s", "Neither party speaking this long is dead air"
    )
    frustration_on: float = of(
        FrustrationConfig, "on", "Frustration score at which frustration becomes active"
    )
    frustration_off: float = of(
        FrustrationConfig, "off", "Frustration score below which it is no longer active"
    )
    frustration_half_life_s: float = of(
        FrustrationConfig, "half_life_s", "Half-life of the evidence behind the frustration score"
    )
    redact: bool = of(
        RedactConfig, "enabled", "Redact PII from transcripts before they are published or stored"
    )
    redact_kinds: str = own("card,ssn,phone,email,account", "Comma-separated PII kinds to redact")
    redact_min_digits: int = of(
        RedactConfig, "min_digits", "A run of this many spoken or written digits is redacted"
    )
    redact_cued_min_digits: int = of(
        RedactConfig,
        "cued_min_digits",
        'Digits enough right after "social security", "card" or "account" to redact',
    )
    assist: bool = own(True, "Run the alert rules and knowledge suggestions over every call")
    rules_file: Path | None = own(None, "Alert rules YAML (default: the shipped rules.yaml)")
    knowledge_file: Path | None = own(
        None, "Knowledge base YAML for suggestions (default: the shipped knowledge.yaml)"
    )
    suggestions: bool = own(True, "Suggest knowledge entries for what the customer says")
    suggestions_top_k: int = of(
        AssistConfig, "top_k", "Knowledge entries suggested per customer turn, at most"
    )
    suggestions_min_score: float = of(
        AssistConfig, "min_score", "Least similarity for a knowledge suggestion"
    )
    feelings: bool = of(
        AssistConfig, "feelings", "Label how the customer feels each turn (angry, anxious, ...)"
    )
    encoder_model: str = of(
        AssistConfig,
        "encoder",
        "Sentence encoder of semantic rules and suggestions: minilm, a directory or hub",
    )
    record_ttl_s: int = of(
        BusConfig, "record_ttl_s", "Seconds a finished call's post-call record is kept"
    )
    panels: bool = own(True, "Serve the agent panel and the supervisor wall board")
    panel_port: int = of(
        PanelConfig, "port", "Port of the panels and their API (0 picks a free one)"
    )
    panel_secret: str = own(
        "",
        "Key (32+ characters) that signs the panels' tokens (`agent-assist token` mints them); "
        "empty: a random one per start, so no token from outside is good",
        secret=True,
    )
    panel_origins: str = own(
        "",
        "Comma-separated origins besides the panels' own whose pages may open the feeds "
        "(https://panels.example.com behind a proxy)",
    )
    oidc_issuer: str = of(
        AuthConfig,
        "oidc_issuer",
        "OIDC mode: the identity provider (https://idp.example.com/realms/cc) whose tokens the "
        "panels take, verified against its JWKS",
    )
    oidc_audience: str = of(AuthConfig, "oidc_audience", "OIDC mode: the tokens' audience")
    oidc_jwks_url: str = of(
        AuthConfig, "oidc_jwks_url", "OIDC mode: the JWKS address (default: from discovery)"
    )
    oidc_role_claim: str = of(
        AuthConfig,
        "oidc_role_claim",
        "OIDC mode: the claim (dotted path) with the role: agent, supervisor or admin",
    )
    oidc_agent_claim: str = of(
        AuthConfig, "oidc_agent_claim", "OIDC mode: the claim with an agent's own agent id"
    )
    worker_name: str = own("", "A worker's consumer name in the group (default: host-pid)")
    worker_prefetch: int = of(
        JobsConfig,
        "prefetch",
        "Jobs a worker takes at once (its model batches them); more on a GPU",
    )
    claim_idle_s: float = of(
        JobsConfig,
        "claim_idle_s",
        "A job a worker has not touched this long is taken over by another worker",
    )
    max_deliveries: int = of(
        JobsConfig, "max_deliveries", "A job delivered this often without an answer is given up"
    )
    final_timeout_s: float = of(
        JobsConfig,
        "final_timeout_s",
        "How long a gateway waits for a worker's final transcript before giving up",
    )
    tls_cert: Path | None = own(
        None,
        "TLS certificate chain (PEM) of the gateway, the panels and the WebRTC endpoint: "
        "wss:// and https:// (with --tls-key)",
    )
    tls_key: Path | None = own(None, "TLS private key (PEM) of --tls-cert", secret=True)
    log_level: LogLevel = own("INFO", "Logging level")

    def __post_init__(self) -> None:
        object.__setattr__(self, "log_level", str(self.log_level).upper())
        flags.check_choices(self)  # once, naming the flag and the allowed values

    def _build(self, config: Callable[..., C], **given: Any) -> C:
        """A component's config from the settings that are its fields, and `given` ones."""
        mine = {
            f.metadata["field"]: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.metadata.get("config") is config
        }
        return config(**(mine | given))

    def asr(self) -> AsrConfig:
        return self._build(AsrConfig, language=self.language or None)

    def jobs(self) -> JobsConfig:
        return self._build(JobsConfig, prefix=self.redis_prefix)

    def vad(self) -> VadConfig:
        return self._build(VadConfig)

    def stream(self) -> StreamConfig:
        return self._build(StreamConfig, redact=self.redaction())

    def redaction(self) -> RedactConfig:
        kinds = [k.strip() for k in self.redact_kinds.split(",") if k.strip()]
        unknown = sorted(set(kinds) - {k.value for k in PiiKind})
        if unknown:
            raise ValueError(
                f"--redact-kinds: unknown kind {', '.join(unknown)} "
                f"(known: {', '.join(k.value for k in PiiKind)})"
            )
        return self._build(RedactConfig, kinds=frozenset(PiiKind(k) for k in kinds))

    def mood_config(self) -> MoodConfig:
        return self._build(
            MoodConfig,
            conversation=self._build(ConversationConfig),
            prosody=self._build(ProsodyConfig),
            frustration=self._build(FrustrationConfig),
        )

    def sentiment(self) -> SentimentConfig | None:
        if self.sentiment_model.lower() in ("", "none", "off"):
            return None
        return self._build(SentimentConfig)

    def redis_tls(self) -> RedisTls:
        return self._build(RedisTls)

    def bus(self) -> BusConfig:
        return self._build(BusConfig)

    def assist_config(self) -> AssistConfig:
        return self._build(
            AssistConfig,
            rules_file=self.rules_file or DEFAULT_RULES,
            knowledge_file=(self.knowledge_file or DEFAULT_KNOWLEDGE) if self.suggestions else None,
            device=self.sentiment_device,
            threads=self.sentiment_threads,
        )

    def tls(self) -> ssl.SSLContext | None:
        """The servers' TLS context from `tls_cert` and `tls_key` (TLS 1.2 at least), or None."""
        if self.tls_cert is None and self.tls_key is None:
            return None
        if self.tls_cert is None or self.tls_key is None:
            raise ValueError("--tls-cert and --tls-key go together")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"--tls-cert/--tls-key: {exc}") from None
        return context

    def panel(self) -> PanelConfig:
        auth = self._build(AuthConfig, secret=self.panel_secret)
        origins = tuple(o.strip().rstrip("/") for o in self.panel_origins.split(",") if o.strip())
        return self._build(PanelConfig, host=self.host, auth=auth, origins=origins, tls=self.tls())

    def networks(self) -> tuple[str, ...]:
        """`audiosocket_allow` as networks, checked."""
        out = []
        for text in (n.strip() for n in self.audiosocket_allow.split(",")):
            if not text:
                continue
            try:
                out.append(str(ipaddress.ip_network(text, strict=False)))
            except ValueError as exc:
                raise ValueError(f"--audiosocket-allow: {exc}") from None
        return tuple(out)

    def served_ingests(self) -> tuple[str, ...]:
        names = tuple(n.strip() for n in self.ingests.split(",") if n.strip())
        unknown = sorted(set(names) - set(INGESTS))
        if unknown:
            raise ValueError(
                f"--ingests: unknown {', '.join(unknown)} (one of {', '.join(INGESTS)})"
            )
        return names

    def gateway(self) -> GatewayConfig:
        try:
            keys = parse_ingest_keys(self.ingest_keys)
        except ValueError as exc:
            raise ValueError(f"--ingest-keys: {exc}") from None
        return self._build(
            GatewayConfig,
            audiosocket_port=None if self.audiosocket_port < 0 else self.audiosocket_port,
            audiosocket_allow=self.networks(),
            webrtc_port=None if self.webrtc_port < 0 else self.webrtc_port,
            ingest_keys=keys,
            ingests=self.served_ingests(),
            insecure=self.insecure,
            tls=self.tls(),
            metadata_fields=frozenset(
                n.strip() for n in self.metadata_fields.split(",") if n.strip()
            ),
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; unset flags stay None so the environment can fill them."""
    flags.add_arguments(parser, Settings, "settings (also AGENT_ASSIST_* variables)")


def load(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    return flags.load(Settings, args, os.environ if environ is None else environ)


def markdown_table() -> str:
    return flags.markdown_table(Settings)


_env_names = flags.env_names
