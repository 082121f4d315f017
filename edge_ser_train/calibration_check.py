"""Measure a shipped model's confidence on corpora it never trained on, and what a temperature does.

    python -m edge_ser_train.calibration_check --data tess=../shared/data/tess --data emodb=../shared/data/emodb

Each corpus is one held-out fold: every clip runs through the device chain (`Recogniser.from_manifest`),
and clip-level ECE is reported before and after a temperature fitted on the *other* corpora
(edge_ser_train.calibration, cross-fitted), with the temperature fitted on all of them. Clips whose
emotion the model does not predict (EmoDB's boredom) are left out. The model's own manifest
calibration, if any, is undone first, so the figures start from the raw int8 outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge_ser.audio.wavfile import load_audio
from edge_ser.model.classifier import Classifier
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.recognise.recogniser import Recogniser, analyse
from edge_ser_train.calibration import HeldOut, calibration_summary
from edge_ser_train.console import run_tool
from edge_ser_train.corpora import load_source
from edge_ser_train.errors import TrainingError
from edge_ser_train.labels import CANONICAL, LabelSet


def held_out(recogniser: Recogniser, spec: str, labels: LabelSet) -> HeldOut:
    """One corpus as a fold: window probabilities, their clips, and each clip's label index."""
    probs, window_clip, clips, clip_labels = [], [], [], []
    rate = recogniser.features.sample_rate
    for i, u in enumerate(load_source(spec)):
        y = labels.index(u.label)
        if y is None:
            continue
        for w in analyse(recogniser, load_audio(u.path, rate)).windows:
            probs.append(w.probabilities)
            window_clip.append(i)
        clips.append(i)
        clip_labels.append(y)
    if not clips:
        raise TrainingError(f"{spec}: no clip has a label the model predicts")
    width = len(labels.labels)
    return HeldOut(np.array(probs).reshape(-1, width), np.array(window_clip, dtype=np.int64),
                   np.array(clips), np.array(clip_labels))


def measure(model: Path, data: list[str]) -> dict[str, Any]:
    if len(data) < 2:
        raise TrainingError("give at least two --data corpora: each one's temperature is fitted on the others")
    classifier = Classifier(model)
    classifier.temperature = 1.0  # start from the raw outputs
    merge = {"calm": "neutral"} if "calm" not in classifier.labels else {}  # as the bundled model merged them
    # Clips of emotions the model has no class for (EmoDB's boredom) are left out, not scored as errors.
    labels = LabelSet("model", classifier.labels, merge, frozenset(CANONICAL) - set(classifier.labels) - set(merge))
    recogniser = Recogniser.from_manifest(classifier)
    folds = [held_out(recogniser, spec, labels) for spec in data]
    return {"corpora": data, **calibration_summary(folds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-ser-calibration-check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True, metavar="KIND=PATH")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)

    def work(args: argparse.Namespace) -> None:
        result = measure(args.model, args.data)
        for spec, fold in zip(result["corpora"], result["folds"], strict=True):
            print(f"{spec}: T from the others {fold['temperature']:.3f}, ECE {fold['ece_before']:.4f} -> "
                  f"{fold['ece_after']:.4f}, NLL {fold['nll_before']:.3f} -> {fold['nll_after']:.3f}")
        print(f"pooled ECE {result['ece_before']:.4f} -> {result['ece_after']:.4f} (cross-fitted); "
              f"T fitted on all: {result['temperature']:.3f}")

    return run_tool(parser, argv, work)


if __name__ == "__main__":
    sys.exit(main())
