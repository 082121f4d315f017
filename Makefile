# Every target sets up what it needs: Debian packages (apt, with sudo when not root) and .venv.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
DATA ?= ../shared/data/ravdess
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test bench lint model setup-apt setup-runtime setup-dev setup-train clean

$(VENV)/.created:
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	touch $@

setup-apt:
	@bash scripts/setup_apt.sh

$(VENV)/.runtime: $(VENV)/.created pyproject.toml | setup-apt
	$(VPY) -m pip install --quiet -e '.[mic]'
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(VPY) -m pip install --quiet -e '.[mic,dev,train]'
	touch $@

setup-runtime: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

run: $(VENV)/.runtime
	bash scripts/run.sh

test: $(VENV)/.dev
	bash scripts/test.sh

bench: $(VENV)/.dev
	$(VPY) -m bench.run_all

lint: $(VENV)/.dev
	bash scripts/lint.sh

model: $(VENV)/.dev
	$(VPY) -m edge_ser_train.build_default --data $(DATA)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
