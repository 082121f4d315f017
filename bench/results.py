"""Result records: figures with their targets, the machine they were measured on, JSON output.

Every benchmark returns the same shape (figures, timings, notes) so `report.py` can render any of
them, including ones added later (the daemon benchmarks), without knowing what they measure.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PACKAGES = ("numpy", "scipy", "librosa", "python_speech_features", "ai-edge-litert", "tensorflow-cpu",
            "keras", "tflite-runtime")
OPERATORS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}


@dataclass(frozen=True)
class Target:
    """A pass/fail threshold from the issue, e.g. Target("<=", 0.01)."""

    op: str
    value: float

    def met(self, measured: float) -> bool:
        return OPERATORS[self.op](float(measured), float(self.value))

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


def figure(key: str, label: str, value: float, unit: str, target: Target | None = None,
           detail: str = "") -> dict[str, Any]:
    """One reported number. Without a target it is a reference figure (pass is None)."""
    return {"key": key, "label": label, "value": float(value), "unit": unit,
            "target": str(target) if target else None,
            "pass": target.met(value) if target else None, "detail": detail}


def ratio_figure(key: str, label: str, ratio: dict[str, Any], target: Target | None = None,
                 detail: str = "") -> dict[str, Any]:
    """A figure from a paired ratio, with the spread of its per-round ratios so noise shows."""
    spread = f"per-round p10-p90 {ratio['p10']:.2f}-{ratio['p90']:.2f}"
    return figure(key, label, ratio["median"], "x", target, f"{detail}; {spread}" if detail else spread)


def package_versions() -> dict[str, str | None]:
    """Installed versions, read from metadata so nothing heavy (TensorFlow) gets imported."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """What the numbers depend on; the load average tells a reader whether the box was shared."""
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "packages": package_versions(),
            "loadavg": list(os.getloadavg())}


def envelope(name: str, title: str, body: dict[str, Any], *, quick: bool, command: str,
             run_note: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The common top level of every result file."""
    return {"benchmark": name, "title": title, "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": command, "quick": quick, "run_note": run_note, "machine": machine_info(),
            "inputs": inputs, **body}


def write_result(results_dir: Path, name: str, record: dict[str, Any]) -> Path:
    """Write `<name>.json` atomically (via a .tmp file) so a report never reads half a file."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)
    return path


def command_line() -> str:
    return " ".join([Path(sys.executable).name, "-m", "bench.run_all", *sys.argv[1:]])
