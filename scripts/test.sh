#!/usr/bin/env bash
# The test suite: lint, then pytest (real mosquitto, real PulseAudio virtual microphone, real TFLite).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m ruff check edge_ser edge_ser_train tests bench
exec .venv/bin/python -m pytest -q "$@"
