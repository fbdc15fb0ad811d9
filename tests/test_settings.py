import argparse
from pathlib import Path

import pytest

from agent_assist import settings as s


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
