"""Rebuild the bundled default model (`make model`): 7 classes, every speaker of the shared corpora
(RAVDESS actors 01-20, TESS OAF, EmoDB 03/08/09/10/11), with the recipe flags the Makefile passes.

All speakers are used. With the default fixed schedule (--val-speakers 0) all of them train the
weights and the int8 conversion is verified on their original (unaugmented) windows; with
--val-speakers N, N actors decide when to stop and verify the conversion instead. The recipe is the
defaults of edge_ser_train.options plus the Makefile's flags, which is what the cross-validation in
reports/multicorpus/ measured with the same flags; its summary (and calibration) goes into the manifest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.model.manifest import Manifest
from edge_ser_train.adaptation import adapt, fit_prior
from edge_ser_train.console import run_tool
from edge_ser_train.convert import convert_and_write, load_recipe, save_recipe
from edge_ser_train.examples import build_examples
from edge_ser_train.fit import train_model
from edge_ser_train.folds import validation_speakers
from edge_ser_train.options import add_options, settings_from
from edge_ser_train.scaling import fit_coefficient_scale

REPO = Path(__file__).resolve().parents[1]
CV_REPORT = REPO / "reports" / "multicorpus" / "metrics.json"
MODEL_NAME, MODEL_VERSION = "edge-ser-7class", "3.0.0"


def cv_summary(path: Path) -> dict | None:
    """The headline numbers of the committed CV report, for the manifest (None if not there)."""
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    return {"protocol": f"speaker-independent {report['settings']['folds']}-fold CV by actor, clip level",
            "summary": report["summary"],
            "pooled_int8_per_class_recall": report["pooled_clip"]["int8"]["per_class_recall"]}


def build(args: argparse.Namespace) -> Manifest:
    """Train on every speaker, save the Keras model and its recipe, convert and verify."""
    s = settings_from(args)
    speakers = sorted({u.speaker for u in s.utterances if s.labels.index(u.label) is not None})
    held_out = validation_speakers(speakers, n=s.val_speakers)
    fit_speakers = [sp for sp in speakers if sp not in held_out]
    # babble (--room-augment) within each side, so no held-out voice is heard in training
    train_all, eval_all = build_examples(s.utterances, s.labels, s.examples, cache_dir=s.cache,
                                         babble_groups=[fit_speakers, held_out])
    print(f"training on {len(fit_speakers)} speakers, validation on {held_out or 'none'}", flush=True)
    train, validation = train_all.select_speakers(fit_speakers), eval_all.select_speakers(held_out)
    extra: dict[str, Any] = {}
    if s.examples.adaptation is not None:  # the device's prior: fitted on every training speaker
        adaptation = fit_prior(train, s.examples.features, s.examples.adaptation)
        train, validation = (adapt(data, s.examples.features, adaptation, s.train.seed) for data in (train, validation))
        extra["adaptation"] = adaptation.to_dict()
    model, history = train_model(train, validation, s.labels.labels, s.model, s.train,
                                 log=lambda line: print(line, flush=True))
    scale = fit_coefficient_scale(train.x[train.copy == 0]) if s.fit_scale else ()
    args.work.mkdir(parents=True, exist_ok=True)
    keras_path = args.work / "model.keras"
    model.save(keras_path)
    save_recipe(keras_path, s.labels, s.examples, fit_speakers, held_out, s.utterances,
                {"model": s.model.to_dict(), "train": s.train.to_dict(), "best_epoch": history.best_epoch + 1,
                 "coefficient_scale": list(scale), **extra})
    manifest = convert_and_write(model, load_recipe(keras_path), s.utterances, args.out, name=MODEL_NAME,
                                 version=MODEL_VERSION, cache=s.cache, cv_metrics=cv_summary(CV_REPORT))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {manifest.metrics['verification']}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_default", description=__doc__)
    add_options(parser)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--work", type=Path, default=Path("/tmp/edge_ser_default"),
                        help="where the float Keras model and its recipe are kept")
    return run_tool(parser, argv, build)


if __name__ == "__main__":
    sys.exit(main())
