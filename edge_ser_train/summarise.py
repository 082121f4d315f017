"""Markdown table rows from edge-ser-train report folders, so the committed reports quote the
metrics files instead of numbers copied by hand.

    python -m edge_ser_train.summarise reports/ravdess_cv reports/ablations/*
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge_ser_train.console import run_tool
from edge_ser_train.errors import TrainingError

COLUMNS = ("run", "float UA", "int8 UA", "int8 WA", "int8 F1", "agreement mean (min)", "int8 UA per fold",
           "members alone (float UA)", "KB")


def _pct(summary: dict[str, Any], key: str, metric: str) -> str:
    value = summary[key][metric]
    return f"{100 * value['mean']:.1f} ± {100 * value['std']:.1f}"


def row(folder: Path) -> list[str]:
    """One table row: means ± std over folds (clip level), agreement, per-fold int8 UA, size."""
    report = json.loads((folder / "metrics.json").read_text())
    summary, folds = report["summary"], report["folds"]
    members = [f["member_float_clip_ua"] for f in folds if "member_float_clip_ua" in f]
    alone = (", ".join(f"{100 * v:.1f}" for v in np.mean(members, axis=0)) if len(members) == len(folds)
             else "–")
    agreement = summary["top1_agreement"]
    return [folder.name, _pct(summary, "float_clip", "ua"), _pct(summary, "int8_clip", "ua"),
            _pct(summary, "int8_clip", "wa"), _pct(summary, "int8_clip", "macro_f1"),
            f"{100 * agreement['mean']:.1f} ({100 * agreement['min']:.1f})",
            ", ".join(f"{100 * f['int8']['clip']['ua']:.1f}" for f in folds), alone,
            str(round(np.mean([f["tflite_bytes"] for f in folds]) / 1024))]


def table(folders: list[Path]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(folder)) + " |" for folder in folders]
    return "\n".join(lines)


def print_table(args: argparse.Namespace) -> None:
    missing = [str(f) for f in args.folders if not (f / "metrics.json").is_file()]
    if missing:
        raise TrainingError(f"no metrics.json in {', '.join(missing)}")
    # A --protocol loco run has no folds to summarise; its table is the report.md beside it.
    no_cv = [str(f) for f in args.folders if "folds" not in json.loads((f / "metrics.json").read_text())]
    if no_cv:
        raise TrainingError(f"no cross-validation folds in {', '.join(no_cv)} (leave-one-corpus-out only: "
                            "see report.md there)")
    print(table(args.folders))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="summarise", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="report folders holding metrics.json")
    return run_tool(parser, argv, print_table)


if __name__ == "__main__":
    sys.exit(main())
