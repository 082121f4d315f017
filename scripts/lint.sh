#!/usr/bin/env bash
# Static checks, one list for `make lint` and the test run: ruff over every Python tree, strict
# mypy over the runtime package (config in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m ruff check edge_ser edge_ser_train edge_ser_testing tests bench
.venv/bin/python -m mypy edge_ser
