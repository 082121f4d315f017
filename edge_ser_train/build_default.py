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

from edge_ser.model.manifest import Manifest, manifest_path
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


def replaced_model(out: Path) -> tuple[str, str]:
    """(sha256 of the model file, fingerprint of its training windows) of the model a build is about
    to replace; "" for what is not there (no file yet, or a manifest older than the fingerprint)."""
    try:
        manifest = json.loads(manifest_path(out).read_text()) if out.is_file() else {}
    except (OSError, ValueError):  # missing or unreadable: it is about to be replaced anyway
        return "", ""
    training = manifest.get("provenance", {}).get("training", {})
    return manifest.get("sha256", ""), training.get("training_windows_sha256", "")


def windows_verdict(out: Path, before: str, now: str) -> str:
    """What the training windows say, before training, about reproducing the model at `out`."""
    if not before:
        return f"{out} records no training-window fingerprint: whether this build will match it shows only at the end"
    if before == now:  # same inputs; TensorFlow's training kernels can still round differently on another CPU
        return (f"training windows identical to those {out} was trained with (sha256 {now[:12]}): expect the "
                "same bytes on the machine that built it; on another CPU training itself may round differently, "
                "and the model should then agree within the seed spread of the cross-validation report")
    return (f"training windows differ from those {out} was trained with (sha256 {now[:12]} here, {before[:12]} "
            "there): the recipe or the data differ, or this machine's CPU or libraries compute the features "
            "differently in their last digits. The model will not be byte-identical; with the same recipe and "
            "data its accuracy should agree within the seed spread of the cross-validation report")


def build(args: argparse.Namespace) -> Manifest:
    """Train on every speaker, save the Keras model and its recipe in --work, convert and verify; say
    early whether the result can be byte-identical to the model it replaces, and at the end whether it is."""
    s = settings_from(args)
    old_sha, old_windows = replaced_model(args.out)

    def tell(now: str) -> None:
        print(windows_verdict(args.out, old_windows, now), flush=True)

    model, keras_path = train_final(s, args.work, args.data, on_windows=tell)
    manifest = convert_and_write(model, load_recipe(keras_path), s.utterances, args.out, name=MODEL_NAME,
                                 version=MODEL_VERSION, cache=s.cache, cv_metrics=cv_summary(CV_REPORT))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {manifest.metrics['verification']}")
    if old_sha:
        same = "the same bytes as" if old_sha == manifest.sha256 else f"different bytes from (sha256 {old_sha[:12]})"
        print(f"sha256 {manifest.sha256[:12]}: {same} the model it replaced")
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
