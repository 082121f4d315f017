#!/usr/bin/env bash
# The test suite: lint (ruff, mypy), then pytest (real mosquitto, real PulseAudio virtual
# microphone, real TFLite). Arguments go to pytest, e.g. -m "not integration and not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/lint.sh
exec .venv/bin/python -m pytest -q "$@"
