# Every target sets up what it needs: Debian packages (`make deps`: apt, with sudo when not root,
# and only when one is missing, so a set-up machine never runs apt-get) and .venv.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# DATA holds ravdess/, tess/ and emodb/ (see its README); MODEL_RECIPE is what reports/multicorpus_3.0.1
# cross-validated.
DATA ?= ../shared/data
MODEL_RECIPE := --members 1 --room-augment --adapt --normalisation speaker

.PHONY: run test bench lint model deps setup-runtime setup-dev clean

$(VENV)/.created: | deps  # python3-venv, and portaudio19-dev for the PyAudio build
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	touch $@

deps:
	@bash scripts/setup_apt.sh

$(VENV)/.runtime: $(VENV)/.created pyproject.toml
	$(VPY) -m pip install --quiet -e '.[mic]'
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(VPY) -m pip install --quiet -e '.[mic,dev,train]'
	touch $@

setup-runtime: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

# run and test also need deps directly: mosquitto, PulseAudio and espeak-ng are used at run time,
# and an existing .venv says nothing about them.
run: $(VENV)/.runtime | deps
	bash scripts/run.sh

test: $(VENV)/.dev | deps
	bash scripts/test.sh

bench: $(VENV)/.dev
	$(VPY) -m bench.run_all

lint: $(VENV)/.dev
	bash scripts/lint.sh

model: $(VENV)/.dev
	$(VPY) -m edge_ser_train.build_default --data ravdess=$(DATA)/ravdess --data tess=$(DATA)/tess \
		--data emodb=$(DATA)/emodb $(MODEL_RECIPE) --out edge_ser/model/bundled/default.tflite

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
