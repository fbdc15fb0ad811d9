"""One typed settings object per process: CLI flags, then `AGENT_ASSIST_*` variables, then defaults.

Each field's flag is `--field-name`, its variable `AGENT_ASSIST_FIELD_NAME`. `REDIS_URL` is also
read, as the conventional name. The README's settings table is generated from these fields
(`agent-assist settings --markdown`), and a test keeps the two in step.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coach_ui.server import PanelConfig
from gateway.calls import GatewayConfig
from pipeline.assist.call_assist import AssistConfig
from pipeline.assist.knowledge import DEFAULT_KNOWLEDGE
from pipeline.assist.rules import DEFAULT_RULES
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

ENV_PREFIX = "AGENT_ASSIST_"


def _opt(default: Any, help: str, env: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "env": env})


@dataclass(frozen=True)
class Settings:
    role: str = _opt(
        "all",
        "What `serve` runs: all (gateway and models in one process) or gateway (models in "
        "`agent-assist worker` processes, reached over Redis Streams)",
    )
    host: str = _opt("127.0.0.1", "Address the gateway (a worker: its /metrics) listens on")
    port: int = _opt(8080, "Gateway port (0 picks a free one)")
    redis_url: str | None = _opt(
        None, "Redis to publish to; unset starts an embedded redis-server on loopback", "REDIS_URL"
    )
    redis_prefix: str = _opt("aa", "Prefix of every Redis key and channel")
    call_ttl_s: int = _opt(3600, "Seconds a call's Redis keys live after it ends")
    model: str = _opt("base", "Whisper model: base, tiny.en, a CTranslate2 directory or a hub name")
    model_cache: Path | None = _opt(
        None, "Where built-in models are assembled (default ~/.cache/agent-assist/models)"
    )
    device: str = _opt("cpu", "Inference device: cpu or cuda")
    compute_type: str = _opt(
        "int8", "CTranslate2 compute type (int8, int8_float16, float16, float32)"
    )
    asr_workers: int = _opt(2, "ASR batches that run at once (threads sharing one model)")
    scheduler: str = _opt(
        "batched",
        "ASR scheduler: batched (across calls, finals first, adaptive interims) or baseline "
        "(each pass alone, first come first served: the policy of open peers, for comparison)",
    )
    max_batch: int = _opt(8, "Most ASR passes of one kind run together in one batch")
    min_window_s: float = _opt(
        20.0,
        "Whisper's encoder window, s: at least this, longer for longer audio (30 = whisper's own "
        "fixed window; each second less is cheaper, and costs some accuracy)",
    )
    interim_min_window_s: float = _opt(
        20.0,
        "The same encoder window for interim passes, s (10 is lighter under load; committed "
        "words then vary more from run to run)",
    )
    cpu_threads: int = _opt(1, "CPU threads per ASR pass")
    language: str = _opt("en", "Spoken language code; empty detects it per utterance")
    beam_size: int = _opt(5, "Beam size of final passes")
    interim_beam_size: int = _opt(5, "Beam size of interim passes")
    no_speech_threshold: float = _opt(
        0.6, "Drop a segment whose no-speech probability is above this (and log-prob low)"
    )
    max_repeats: int = _opt(3, "Cut a word or phrase repeated back to back more often than this")
    interim_interval_s: float = _opt(1.0, "Run an interim pass per this much new speech")
    interim_queue: int = _opt(16, "Interim passes that may wait for the model; more are shed")
    final_queue: int = _opt(64, "Final passes that may wait before calls are paused")
    vad_aggressiveness: int = _opt(2, "webrtcvad mode, 0 (keeps most) to 3 (filters most)")
    vad_min_speech_ms: int = _opt(150, "Voiced audio needed to start an utterance")
    vad_hangover_ms: int = _opt(500, "Silence that ends an utterance")
    vad_pad_ms: int = _opt(300, "Audio kept before and after the voiced part of an utterance")
    max_utterance_s: float = _opt(20.0, "Longest utterance before it is cut")
    max_frame_bytes: int = _opt(65536, "Largest binary audio frame accepted")
    public_url: str | None = _opt(
        None, "The gateway's URL as telephony platforms dial it (wss://host), for signatures"
    )
    twilio_auth_token: str | None = _opt(
        None, "Twilio auth token: when set, X-Twilio-Signature must match", "TWILIO_AUTH_TOKEN"
    )
    audiohook_api_key: str | None = _opt(None, "Genesys AudioHook API key (X-API-KEY) required")
    audiohook_client_secret: str | None = _opt(
        None, "Genesys AudioHook client secret (base64): when set, requests must be signed"
    )
    audiofork_token: str | None = _opt(
        None, "FreeSWITCH audio fork token (basic-auth password or bearer) required"
    )
    audiosocket_port: int = _opt(
        9092, "Asterisk AudioSocket port of customer legs; agent legs on the next (-1: off)"
    )
    webrtc_port: int = _opt(8082, "WebRTC offer/answer endpoint and softphone page port (-1: off)")
    webrtc_token: str | None = _opt(None, "WebRTC offers need this bearer token (or ?token=)")
    mood: bool = _opt(
        True, "Run the mood stage: sentiment, prosody emotion, conversation signals, frustration"
    )
    sentiment_model: str = _opt(
        "minilm-call",
        "Sentiment model: minilm-call (built in), a sequence-classification directory or hub "
        "name, or none",
    )
    sentiment_device: str = _opt("cpu", "Device of the sentiment model: cpu or cuda")
    sentiment_threads: int = _opt(1, "CPU threads of the sentiment model")
    sentiment_half_life_s: float = _opt(30.0, "Half-life of a turn in the rolling sentiment")
    prosody_baseline_s: float = _opt(2.5, "Voiced speech that sets each speaker's prosody baseline")
    talkover_min_s: float = _opt(1.0, "Both parties speaking this long is a talk-over")
    dead_air_min_s: float = _opt(5.0, "Neither party speaking this long is dead air")
    frustration_on: float = _opt(0.6, "Frustration score at which frustration becomes active")
    frustration_off: float = _opt(0.4, "Frustration score below which it is no longer active")
    frustration_half_life_s: float = _opt(
        30.0, "Half-life of the evidence behind the frustration score"
    )
    redact: bool = _opt(True, "Redact PII from transcripts before they are published or stored")
    redact_kinds: str = _opt("card,ssn,phone,email,account", "Comma-separated PII kinds to redact")
    redact_min_digits: int = _opt(8, "A run of this many spoken or written digits is redacted")
    redact_cued_min_digits: int = _opt(
        5, 'Digits enough right after "social security", "card" or "account" to redact'
    )
    assist: bool = _opt(True, "Run the alert rules and knowledge suggestions over every call")
    rules_file: Path | None = _opt(None, "Alert rules YAML (default: the shipped rules.yaml)")
    knowledge_file: Path | None = _opt(
        None, "Knowledge base YAML for suggestions (default: the shipped knowledge.yaml)"
    )
    suggestions: bool = _opt(True, "Suggest knowledge entries for what the customer says")
    suggestions_top_k: int = _opt(3, "Knowledge entries suggested per customer turn, at most")
    suggestions_min_score: float = _opt(0.45, "Least similarity for a knowledge suggestion")
    encoder_model: str = _opt(
        "minilm", "Sentence encoder of semantic rules and suggestions: minilm, a directory or hub"
    )
    record_ttl_s: int = _opt(7 * 24 * 3600, "Seconds a finished call's post-call record is kept")
    panels: bool = _opt(True, "Serve the agent panel and the supervisor wall board")
    panel_port: int = _opt(8081, "Port of the panels and their API (0 picks a free one)")
    panel_token: str = _opt(
        "", "Access token of the panels and their API; empty makes a random one, logged at start"
    )
    worker_name: str = _opt("", "A worker's consumer name in the group (default: host-pid)")
    worker_prefetch: int = _opt(
        4, "Jobs a worker takes at once (its model batches them); more on a GPU"
    )
    claim_idle_s: float = _opt(
        5.0, "A job a worker has not touched this long is taken over by another worker"
    )
    max_deliveries: int = _opt(3, "A job delivered this often without an answer is given up")
    final_timeout_s: float = _opt(
        120.0, "How long a gateway waits for a worker's final transcript before giving up"
    )
    log_level: str = _opt("INFO", "Logging level")

    def asr(self) -> AsrConfig:
        try:
            scheduler = Scheduler(self.scheduler)
        except ValueError:
            known = ", ".join(s.value for s in Scheduler)
            raise ValueError(f"scheduler: {self.scheduler!r} is not one of {known}") from None
        return AsrConfig(
            scheduler=scheduler,
            max_batch=self.max_batch,
            min_window_s=self.min_window_s,
            interim_min_window_s=self.interim_min_window_s,
            model=self.model,
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            workers=self.asr_workers,
            language=self.language or None,
            beam_size=self.beam_size,
            interim_beam_size=self.interim_beam_size,
            no_speech_threshold=self.no_speech_threshold,
            max_repeats=self.max_repeats,
            final_queue_size=self.final_queue,
            interim_queue_size=self.interim_queue,
            cache_dir=self.model_cache,
        )

    def gateway_only(self) -> bool:
        """True for `role = gateway`: the models run in workers."""
        if self.role not in ("all", "gateway"):
            raise ValueError(f"role: {self.role!r} is not one of all, gateway")
        return self.role == "gateway"

    def jobs(self) -> JobsConfig:
        return JobsConfig(
            prefix=self.redis_prefix,
            claim_idle_s=self.claim_idle_s,
            max_deliveries=self.max_deliveries,
            final_timeout_s=self.final_timeout_s,
            prefetch=self.worker_prefetch,
        )

    def vad(self) -> VadConfig:
        return VadConfig(
            aggressiveness=self.vad_aggressiveness,
            min_speech_ms=self.vad_min_speech_ms,
            hangover_ms=self.vad_hangover_ms,
            pad_ms=self.vad_pad_ms,
            max_utterance_s=self.max_utterance_s,
        )

    def stream(self) -> StreamConfig:
        return StreamConfig(interim_interval_s=self.interim_interval_s, redact=self.redaction())

    def redaction(self) -> RedactConfig:
        kinds = [k.strip() for k in self.redact_kinds.split(",") if k.strip()]
        unknown = sorted(set(kinds) - {k.value for k in PiiKind})
        if unknown:
            raise ValueError(
                f"redact_kinds: unknown kind {', '.join(unknown)} "
                f"(known: {', '.join(k.value for k in PiiKind)})"
            )
        return RedactConfig(
            enabled=self.redact,
            kinds=frozenset(PiiKind(k) for k in kinds),
            min_digits=self.redact_min_digits,
            cued_min_digits=self.redact_cued_min_digits,
        )

    def mood_config(self) -> MoodConfig:
        return MoodConfig(
            sentiment_half_life_s=self.sentiment_half_life_s,
            conversation=ConversationConfig(
                talkover_min_s=self.talkover_min_s, dead_air_min_s=self.dead_air_min_s
            ),
            prosody=ProsodyConfig(baseline_voiced_s=self.prosody_baseline_s),
            frustration=FrustrationConfig(
                half_life_s=self.frustration_half_life_s,
                on=self.frustration_on,
                off=self.frustration_off,
            ),
        )

    def sentiment(self) -> SentimentConfig | None:
        if self.sentiment_model.lower() in ("", "none", "off"):
            return None
        return SentimentConfig(
            model=self.sentiment_model,
            device=self.sentiment_device,
            threads=self.sentiment_threads,
        )

    def bus(self) -> BusConfig:
        return BusConfig(
            prefix=self.redis_prefix, call_ttl_s=self.call_ttl_s, record_ttl_s=self.record_ttl_s
        )

    def assist_config(self) -> AssistConfig:
        return AssistConfig(
            rules_file=self.rules_file or DEFAULT_RULES,
            knowledge_file=(self.knowledge_file or DEFAULT_KNOWLEDGE) if self.suggestions else None,
            encoder=self.encoder_model,
            device=self.sentiment_device,
            threads=self.sentiment_threads,
            top_k=self.suggestions_top_k,
            min_score=self.suggestions_min_score,
        )

    def panel(self) -> PanelConfig:
        return PanelConfig(host=self.host, port=self.panel_port, token=self.panel_token)

    def gateway(self) -> GatewayConfig:
        return GatewayConfig(
            host=self.host,
            port=self.port,
            max_frame_bytes=self.max_frame_bytes,
            public_url=self.public_url,
            twilio_auth_token=self.twilio_auth_token,
            audiohook_api_key=self.audiohook_api_key,
            audiohook_client_secret=self.audiohook_client_secret,
            audiofork_token=self.audiofork_token,
            audiosocket_port=None if self.audiosocket_port < 0 else self.audiosocket_port,
            webrtc_port=None if self.webrtc_port < 0 else self.webrtc_port,
            webrtc_token=self.webrtc_token,
        )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _env_names(f: dataclasses.Field[Any]) -> list[str]:
    names = [ENV_PREFIX + f.name.upper()]
    if f.metadata.get("env"):
        names.append(f.metadata["env"])
    return names


def _converter(tp: Any) -> Any:
    """The str -> value function for a field's type (Optional unwrapped)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
    if tp is bool:
        return lambda s: s.strip().lower() in ("1", "true", "yes", "on")
    return tp


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; unset flags stay None so the environment can fill them."""
    hints = typing.get_type_hints(Settings)
    group = parser.add_argument_group("settings (also AGENT_ASSIST_* variables)")
    for f in dataclasses.fields(Settings):
        group.add_argument(
            _flag(f.name),
            dest=f.name,
            type=_converter(hints[f.name]),
            default=None,
            metavar=f.name.split("_")[-1].upper(),
            help=f"{f.metadata['help']} (default: {f.default})",
        )


def load(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    environ = os.environ if environ is None else environ
    hints = typing.get_type_hints(Settings)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        flag_value = getattr(args, f.name, None) if args is not None else None
        if flag_value is not None:
            values[f.name] = flag_value
            continue
        for env in _env_names(f):
            if env in environ:
                try:
                    values[f.name] = _converter(hints[f.name])(environ[env])
                except ValueError as exc:
                    raise SystemExit(f"{env}={environ[env]!r}: {exc}") from None
                break
    return Settings(**values)


def markdown_table() -> str:
    rows = ["| flag | variable | default | what it sets |", "|---|---|---|---|"]
    for f in dataclasses.fields(Settings):
        env = " / ".join(f"`{n}`" for n in _env_names(f))
        default = "unset" if f.default is None else f"`{f.default}`"
        rows.append(f"| `{_flag(f.name)}` | {env} | {default} | {f.metadata['help']} |")
    return "\n".join(rows) + "\n"
