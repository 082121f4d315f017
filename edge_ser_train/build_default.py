"""Rebuild the bundled default model (`make model`): 7 classes, every speaker of the shared corpora
(RAVDESS actors 01-20, TESS OAF, EmoDB 03/08/09/10/11).

    python -m edge_ser_train.build_default --data ravdess=PATH --data tess=PATH --data emodb=PATH \
        --members 1 --room-augment --adapt --normalisation speaker --out edge_ser/model/bundled/default.tflite

The same training as `edge-ser-train --final` (edge_ser_train.final) and the same conversion as
edge-ser-convert, with the bundled model's name and version and the committed CV report's summary
in the manifest. The recipe is the defaults of edge_ser_train.options plus the flags above (the
Makefile's), which is what the cross-validation in reports/multicorpus_3.0.1/ measured with the same
flags. --out has no default: the bundled model is replaced only when a developer names it, never
by a wheel user's run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_ser.model.manifest import Manifest
from edge_ser_train.console import run_tool
from edge_ser_train.convert import convert_and_write, load_recipe
from edge_ser_train.final import train_final
from edge_ser_train.options import add_options, settings_from

REPO = Path(__file__).resolve().parents[1]
CV_REPORT = REPO / "reports" / "multicorpus_3.0.1" / "metrics.json"
MODEL_NAME, MODEL_VERSION = "edge-ser-7class", "3.0.1"


def cv_summary(path: Path) -> dict | None:
    """The headline numbers of the committed CV report, for the manifest (None if not there)."""
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    protocol = (f"speaker-independent, clip level: {report['settings']['folds']}-fold CV by speaker within every "
                f"corpus" + (" and leave-one-corpus-out" if report["settings"].get("protocol") == "both" else ""))
    return {"protocol": protocol,
            "summary": report["summary"],
            "pooled_int8_per_class_recall": report["pooled_clip"]["int8"]["per_class_recall"]}


def build(args: argparse.Namespace) -> Manifest:
    """Train on every speaker, save the Keras model and its recipe in --work, convert and verify."""
    s = settings_from(args)
    model, keras_path = train_final(s, args.work, args.data)
    manifest = convert_and_write(model, load_recipe(keras_path), s.utterances, args.out, name=MODEL_NAME,
                                 version=MODEL_VERSION, cache=s.cache, cv_metrics=cv_summary(CV_REPORT))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {manifest.metrics['verification']}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_default", description=__doc__)
    add_options(parser)
    parser.add_argument("--out", type=Path, required=True,
                        help="the .tflite to write (the bundled model: edge_ser/model/bundled/default.tflite)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/edge_ser_default"),
                        help="where the float Keras model and its recipe are kept")
    return run_tool(parser, argv, build)


if __name__ == "__main__":
    sys.exit(main())
