import argparse
from pathlib import Path

import pytest

from agent_assist import settings as s
from gateway.calls import GatewayConfig
from pipeline.bus.client import masked
from pipeline.bus.jobs import JobsConfig
from pipeline.bus.redis_bus import BusConfig
from pipeline.speech.asr import AsrConfig, Scheduler
from pipeline.speech.stream import StreamConfig
from pipeline.speech.vad import VadConfig


def parse(argv):
    parser = argparse.ArgumentParser()
    s.add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_override_environment_override_defaults():
    env = {
        "AGENT_ASSIST_PORT": "9000",
        "AGENT_ASSIST_MODEL": "tiny.en",
        "REDIS_URL": "redis://r:6379/1",
    }
    got = s.load(parse(["--port", "9100"]), env)
    assert got.port == 9100  # flag beats variable
    assert got.model == "tiny.en"  # variable beats default
    assert got.redis_url == "redis://r:6379/1"  # the conventional name works too
    assert got.vad_hangover_ms == 500  # default


def test_prefixed_redis_variable_wins_over_the_conventional_one():
    env = {"AGENT_ASSIST_REDIS_URL": "redis://a/0", "REDIS_URL": "redis://b/0"}
    assert s.load(None, env).redis_url == "redis://a/0"


def test_types_are_converted_and_bad_values_named():
    got = s.load(parse(["--interim-interval-s", "0.5", "--model-cache", "/tmp/m"]), {})
    assert got.interim_interval_s == 0.5 and got.model_cache == Path("/tmp/m")
    with pytest.raises(SystemExit, match="AGENT_ASSIST_PORT"):
        s.load(None, {"AGENT_ASSIST_PORT": "eighty"})


def test_sub_configs_carry_the_settings():
    got = s.load(parse(["--vad-aggressiveness", "3", "--language", ""]), {})
    assert got.vad().aggressiveness == 3
    assert got.asr().language is None  # empty: detect per utterance


def test_readme_settings_table_is_current():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert s.markdown_table() in readme, "regenerate with: agent-assist settings --markdown"


def test_choices_are_checked_once_naming_the_flag_and_the_allowed_values():
    with pytest.raises(SystemExit, match=r"AGENT_ASSIST_SCHEDULER.*'fifo'.*batched, baseline"):
        s.load(None, {"AGENT_ASSIST_SCHEDULER": "fifo"})
    with pytest.raises(ValueError, match=r"--role / AGENT_ASSIST_ROLE: 'both' is not one of all"):
        s.Settings(role="both")  # type: ignore[arg-type]
    with pytest.raises(SystemExit):  # argparse lists the choices
        parse(["--device", "tpu"])
    got = s.load(parse(["--scheduler", "baseline"]), {"AGENT_ASSIST_LOG_LEVEL": "debug"})
    assert got.asr().scheduler is Scheduler.BASELINE and got.log_level == "DEBUG"


def test_component_defaults_are_the_components_own():
    got = s.Settings()
    assert got.vad() == VadConfig() and got.bus() == BusConfig() and got.jobs() == JobsConfig()
    assert got.asr() == AsrConfig()
    assert got.stream() == StreamConfig()
    assert got.gateway() == GatewayConfig(audiosocket_port=9092)  # WebRTC is off by default


def test_a_secret_comes_from_a_file_never_needing_a_flag(tmp_path):
    secret = tmp_path / "twilio"
    secret.write_text("s3cret token\n")
    env = {"AGENT_ASSIST_TWILIO_AUTH_TOKEN_FILE": str(secret), "REDIS_URL_FILE": str(secret)}
    got = s.load(None, env)
    assert got.twilio_auth_token == "s3cret token" and got.redis_url == "s3cret token"
    env["AGENT_ASSIST_TWILIO_AUTH_TOKEN"] = "from the variable"  # the variable itself wins
    assert s.load(None, env).twilio_auth_token == "from the variable"
    with pytest.raises(SystemExit, match=r"AGENT_ASSIST_INGEST_KEYS_FILE=.*No such file"):
        s.load(None, {"AGENT_ASSIST_INGEST_KEYS_FILE": str(tmp_path / "missing")})


def test_a_redis_password_is_masked_wherever_the_url_is_shown():
    assert masked("redis://:pw@10.0.0.5:6380/2") == "redis://:***@10.0.0.5:6380/2"
    assert (
        masked("rediss://ingest:pw@redis.example:6379/0")
        == "rediss://ingest:***@redis.example:6379/0"
    )
    assert masked("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_audiosocket_networks_are_checked_and_named():
    got = s.load(parse(["--audiosocket-allow", "10.1.0.0/16, 192.168.7.9"]), {})
    assert got.gateway().audiosocket_allow == ("10.1.0.0/16", "192.168.7.9/32")
    with pytest.raises(ValueError, match=r"--audiosocket-allow: .*'10\.1\.0\.0/33'"):
        s.load(parse(["--audiosocket-allow", "10.1.0.0/33"]), {}).gateway()
