"""edge-ser-train: speaker-independent k-fold cross-validation of a model recipe, float and int8.

    python -m edge_ser_train.train --data ravdess=../shared/data/ravdess --out runs/cv

Every fold: test speakers never trained on, two further training speakers held out for early
stopping, int8 conversion calibrated on the fold's training windows, then float and int8 scored on
the test speakers at clip level (windows averaged per clip, as `edge-ser predict` does).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edge_ser_train.console import run_tool
from edge_ser_train.errors import TrainingError
from edge_ser_train.evaluate import compare, level_scores
from edge_ser_train.examples import build_examples
from edge_ser_train.export import to_int8_tflite
from edge_ser_train.fit import train_model
from edge_ser_train.folds import speaker_folds, validation_speakers
from edge_ser_train.options import Settings, add_options, settings_from
from edge_ser_train.report import write_report
from edge_ser_train.robustness import condition_examples, robustness_scores
from edge_ser_train.scaling import apply_coefficient_scale, fit_coefficient_scale, fold_coefficient_scale
from edge_ser_train.speaker_norm import speaker_normalise


def cross_validate(s: Settings, k: int, out: Path, speaker_norm: str | None = None,
                   robustness: bool = False) -> dict[str, Any]:
    """Run the CV, write the report folder, return the summary. `speaker_norm` ("cmvn" or "cmn")
    normalises windows with the statistics of the speaker's other clips (an experiment: the device
    cannot do it yet). `robustness` re-scores every fold's test clips under the room conditions of
    edge_ser_train.robustness."""
    if robustness and speaker_norm:
        raise TrainingError("--robustness scores the windows the device computes; --speaker-norm changes them "
                            "on the training side only: use one or the other")
    started = time.time()
    labels = s.labels.labels
    groups = speaker_folds([u.speaker for u in s.utterances if s.labels.index(u.label) is not None], k)
    print(f"{len(s.utterances)} clips; building examples ...", flush=True)
    train_all, eval_all = build_examples(s.utterances, s.labels, s.examples, cache_dir=s.cache, babble_groups=groups)
    if speaker_norm:
        train_all, eval_all = speaker_normalise(train_all, eval_all, variance=speaker_norm == "cmvn")
    print(f"  {len(train_all.x)} training windows (incl. copies), {len(eval_all.x)} evaluation windows "
          f"[{time.time() - started:.0f} s]", flush=True)
    conditions = None
    if robustness:
        conditions = condition_examples(s.utterances, s.labels, s.examples, groups)
        print(f"  robustness conditions: {', '.join(conditions)} [{time.time() - started:.0f} s]", flush=True)
    folds, histories = [], []
    for i, test_speakers in enumerate(groups):
        rest = sorted({str(sp) for sp in eval_all.clip_speaker} - set(test_speakers))
        val_speakers = validation_speakers(rest, n=s.val_speakers, offset=i)
        fit_speakers = [sp for sp in rest if sp not in val_speakers]
        print(f"fold {i + 1}/{k}: test {test_speakers}, validation {val_speakers or 'none'}", flush=True)
        train = train_all.select_speakers(fit_speakers)
        val, test = eval_all.select_speakers(val_speakers), eval_all.select_speakers(test_speakers)
        model, history = train_model(train, val, labels, s.model, s.train, log=lambda line: print(line, flush=True))
        calibration = train.x[train.copy == 0]
        scale: tuple[float, ...] = ()
        if s.fit_scale:
            scale = fit_coefficient_scale(calibration)
            model, calibration = fold_coefficient_scale(model, scale), calibration / np.float32(scale)
            test = apply_coefficient_scale(test, scale)
        tflite = to_int8_tflite(model, calibration, seed=s.train.seed)
        result = compare(model, tflite, test, labels).to_dict()
        if s.train.members > 1:  # each member alone, float: what the ensemble adds over one model
            result["member_float_clip_ua"] = [
                level_scores(member.predict(test.x, batch_size=256, verbose=0), test, labels)["clip"]["ua"]
                for member in model.layers[1:-1]]
        if conditions is not None:
            result["robustness"] = robustness_scores(tflite, conditions, test_speakers, scale, labels)
        result.update(test_speakers=list(test_speakers), val_speakers=val_speakers,
                      best_epoch=history.best_epoch + 1, tflite_bytes=len(tflite))
        folds.append(result)
        histories.append(history)
        print(f"fold {i + 1}: clip UA float {result['float']['clip']['ua']:.3f} int8 "
              f"{result['int8']['clip']['ua']:.3f}, agreement {result['top1_agreement']:.3f}, "
              f"{len(tflite) / 1024:.0f} KB [{time.time() - started:.0f} s]"
              + (f", members alone {result['member_float_clip_ua']}" if "member_float_clip_ua" in result else ""),
              flush=True)
    settings = {"labels": s.labels.name, "folds": k, "examples": asdict(s.examples), "model": s.model.to_dict(),
                "train": s.train.to_dict(), "clips": len(s.utterances),
                "corpora": sorted({u.corpus for u in s.utterances}), "speaker_norm": speaker_norm,
                "coefficient_scale": "fitted per fold, folded in at conversion" if s.fit_scale else "none",
                "robustness": robustness,
                "seconds": round(time.time() - started)}
    summary = write_report(out, labels, folds, histories, settings)
    print(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Console entry point of edge-ser-train."""
    parser = argparse.ArgumentParser(prog="edge-ser-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--robustness", action="store_true",
                        help="also score every fold's int8 model on its test clips at -20 dB, in white and babble "
                             "noise (SNR 20/10/5 dB), reverberation (RT60 0.3/0.6 s) and telephone band: "
                             "robustness.md and metrics.json")
    parser.add_argument("--speaker-norm", choices=("cmvn", "cmn"),
                        help="experiment: normalise windows with the speaker's other clips' mean and variance "
                             "(cmvn) or mean (cmn); use with --normalisation none; not implemented on the device")
    return run_tool(parser, argv, lambda args: cross_validate(settings_from(args), args.folds, args.out,
                                                              speaker_norm=args.speaker_norm,
                                                              robustness=args.robustness))


if __name__ == "__main__":
    sys.exit(main())
