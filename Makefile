# Two commands a new user needs:
#   make demo   set up a virtual environment and run a live demo call through the whole pipeline
#   make test   set up (with test tools) and run lint, type checks and the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint pytest bench sample-call clean

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

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -q

test: lint pytest

# Benchmarks print figures; they are not part of the test suite.
bench: $(VENV)/.installed-dev
	@test -d /usr/share/asterisk/sounds/en_US_f_Allison || (apt-get update -qq && apt-get install -y -qq asterisk-core-sounds-en-wav)
	$(BIN)/python -m loadtest.bench_spine

sample-call:
	@command -v espeak-ng >/dev/null && command -v sox >/dev/null || (apt-get update -qq && apt-get install -y -qq espeak-ng sox bc)
	bash scripts/make_sample_call.sh

clean:
	rm -rf $(VENV) build *.egg-info
