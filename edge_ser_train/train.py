"""edge-ser-train: speaker-independent k-fold cross-validation of a model recipe, float and int8,
and with --final the deployable model of that recipe, trained on every speaker.

    edge-ser-train --data ravdess=../shared/data/ravdess --out runs/mine --final
    edge-ser-convert --model runs/mine/model.keras      # -> runs/mine/model.tflite and model.json

Every fold: test speakers never trained on (dealt out within every corpus), optionally further
training speakers held out for early stopping, int8 conversion calibrated on the fold's training
windows, then float and int8 scored on the test speakers at clip level (windows averaged per clip,
as `edge-ser predict` does), overall and per corpus. `--protocol loco` runs the same split once per
corpus with that corpus as the test set and the others as training: how a model fares on a
recording set-up and voices no corpus it learnt from had.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_ser_train.adaptation import adapt, fit_prior
from edge_ser_train.calibration import HeldOut, calibration_summary
from edge_ser_train.console import run_tool
from edge_ser_train.corpora import corpus_of
from edge_ser_train.errors import TrainingError
from edge_ser_train.evaluate import compare, level_scores
from edge_ser_train.examples import ExampleSet, build_examples
from edge_ser_train.export import to_int8_tflite
from edge_ser_train.final import train_final
from edge_ser_train.fit import History, train_model
from edge_ser_train.folds import by_corpus, corpus_splits, speaker_folds, training_only_speakers, validation_speakers
from edge_ser_train.options import Settings, add_options, at_least, settings_from
from edge_ser_train.progress import Progress
from edge_ser_train.quantisation_aware import grid_fine_tuned
from edge_ser_train.report import curve, write_report
from edge_ser_train.robustness import ConditionSet, condition_examples, robustness_scores
from edge_ser_train.scaling import apply_coefficient_scale, fit_coefficient_scale, fold_coefficient_scale

PROTOCOLS = ("cv", "loco", "both")


def run_split(s: Settings, train_all: ExampleSet, eval_all: ExampleSet, train_speakers: list[str],
              test_speakers: list[str], val_offset: int, started: float,
              conditions: dict[str, ConditionSet] | None = None,
              progress: Progress | None = None) -> tuple[dict[str, Any], History, HeldOut]:
    """Train on `train_speakers` (less the early-stopping ones), convert to int8, score float and int8
    on `test_speakers`, overall and per corpus, and under the room `conditions` if given: one CV fold
    or one leave-one-corpus-out split. Also returns the int8 probabilities of the held-out clips, for
    fitting the confidence calibration."""
    labels = s.labels.labels
    # A one-speaker corpus held out for early stopping would leave training without that corpus.
    single = training_only_speakers(eval_all.clip_speaker.tolist())
    candidates = [sp for sp in train_speakers if sp not in single]
    val_speakers = validation_speakers(candidates, n=s.val_speakers, offset=val_offset)
    fit_speakers = [sp for sp in train_speakers if sp not in val_speakers]
    print(f"  test {test_speakers}, validation {val_speakers or 'none'}", flush=True)
    train = train_all.select_speakers(fit_speakers)
    val, test = eval_all.select_speakers(val_speakers), eval_all.select_speakers(test_speakers)
    if s.examples.adaptation is not None:  # the prior from this split's training speakers only
        adaptation = fit_prior(train, s.examples.features, s.examples.adaptation)
        train, val, test = (adapt(data, s.examples.features, adaptation, s.train.seed) for data in (train, val, test))
        if conditions is not None:
            conditions = {name: replace(c, windows=adapt(c.windows.select_speakers(test_speakers), s.examples.features,
                                                         adaptation, s.train.seed))
                          for name, c in conditions.items()}
    model, history = train_model(train, val, labels, s.model, s.train, log=lambda line: print(line, flush=True),
                                 progress=progress)
    calibration = train.x[train.copy == 0]
    scale: tuple[float, ...] = ()
    if s.fit_scale:
        scale = fit_coefficient_scale(calibration)
        model, calibration = fold_coefficient_scale(model, scale), calibration / np.float32(scale)
        test = apply_coefficient_scale(test, scale)
    if s.train.qat_epochs:  # after the scale is folded in, so the first layer's weights stay on the grid
        model = grid_fine_tuned(model, train, scale, s.train)
    tflite = to_int8_tflite(model, calibration, seed=s.train.seed, output_layer=s.model.output_layer)
    comparison = compare(model, tflite, test, labels)
    result = comparison.to_dict()
    test_clips = test.clips()
    held_out = HeldOut(comparison.int8_probs, test.clip, test_clips, test.clip_label[test_clips])
    corpora = sorted({corpus_of(sp) for sp in test_speakers})
    result["corpora"] = ({corpora[0]: {"float": result["float"], "int8": result["int8"]}} if len(corpora) == 1 else
                         {c: compare(model, tflite, test.select_corpus(c), labels).to_dict() for c in corpora})
    if s.train.members > 1:  # each member alone, float: what the ensemble adds over one model
        result["member_float_clip_ua"] = [
            level_scores(member.predict(test.x, batch_size=256, verbose=0), test, labels)["clip"]["ua"]
            for member in model.layers[1:-1]]
    if conditions is not None:
        result["robustness"] = robustness_scores(tflite, conditions, test_speakers, scale, labels)
    result.update(test_speakers=list(test_speakers), val_speakers=val_speakers,
                  best_epoch=history.best_epoch + 1, tflite_bytes=len(tflite))
    print(f"  clip UA float {result['float']['clip']['ua']:.3f} int8 {result['int8']['clip']['ua']:.3f}, "
          f"agreement {result['top1_agreement']:.3f} (clips {result['clip_agreement']:.3f}, "
          f"int8 ties {result['int8_ties']:.3f}), {len(tflite) / 1024:.0f} KB [{time.time() - started:.0f} s]"
          + (f", members alone {result['member_float_clip_ua']}" if "member_float_clip_ua" in result else ""),
          flush=True)
    return result, history, held_out


def babble_groups(speakers: list[str], cv_splits: list[list[str]]) -> list[list[str]]:
    """Speakers whose voices may babble behind each other: the same corpus and, in a CV, the same
    test fold. So no babble carries a voice of a fold's test speakers into its training copies, nor
    a held-out corpus's voices into leave-one-corpus-out training."""
    folds = cv_splits or [speakers]
    groups = [[sp for sp in fold if corpus_of(sp) == corpus] for fold in folds
              for corpus in sorted({corpus_of(sp) for sp in speakers})]
    return [group for group in groups if group]


def cross_validate(s: Settings, k: int, out: Path, protocol: str = "cv", robustness: bool = False) -> dict[str, Any]:
    """Run the CV (folds by speaker within every corpus) and/or leave-one-corpus-out (`protocol`:
    "cv", "loco" or "both"), write the report folder, return the summary. `robustness` re-scores
    every CV fold's test clips under the room conditions of edge_ser_train.robustness."""
    if robustness and protocol == "loco":
        raise TrainingError("--robustness scores the cross-validation folds: use --protocol cv or both")
    started = time.time()
    speakers = sorted({u.speaker for u in s.utterances if s.labels.index(u.label) is not None})
    # Refuse an impossible protocol before minutes of feature building, not after.
    cv_splits = speaker_folds(speakers, k) if protocol in ("cv", "both") else []
    loco_splits = corpus_splits(speakers) if protocol in ("loco", "both") else []
    groups = babble_groups(speakers, cv_splits)
    print(f"{len(s.utterances)} clips; building examples ...", flush=True)
    train_all, eval_all = build_examples(s.utterances, s.labels, s.examples, cache_dir=s.cache, babble_groups=groups,
                                         progress=True)
    print(f"  {len(train_all.x)} training windows (incl. copies), {len(eval_all.x)} evaluation windows "
          f"[{time.time() - started:.0f} s]", flush=True)
    conditions = None
    if robustness:
        conditions = condition_examples(s.utterances, s.labels, s.examples, groups)
        print(f"  robustness conditions: {', '.join(conditions)} [{time.time() - started:.0f} s]", flush=True)
    folds, histories, held_out, loco = [], [], [], []
    epochs = (len(cv_splits) + len(loco_splits)) * s.train.members * s.train.max_epochs
    with Progress(epochs, "training", "epochs") as progress:
        for i, test_speakers in enumerate(cv_splits):
            print(f"fold {i + 1}/{k}", flush=True)
            rest = [sp for sp in speakers if sp not in test_speakers]
            result, history, held = run_split(s, train_all, eval_all, rest, test_speakers, i, started, conditions,
                                              progress)
            held_out.append(held)
            folds.append(result)
            histories.append(history)
        for i, (corpus, test_speakers) in enumerate(loco_splits):
            print(f"leave {corpus} out ({i + 1}/{len(loco_splits)})", flush=True)
            others = [sp for sp in speakers if corpus_of(sp) != corpus]
            result, history, _ = run_split(s, train_all, eval_all, others, test_speakers, i, started,
                                           progress=progress)
            loco.append({"corpus": corpus, "train_corpora": sorted({corpus_of(sp) for sp in others}), **result,
                         "curve": curve(history)})
    dropped = Counter(u.label for u in s.utterances if s.labels.index(u.label) is None)
    settings = {"labels": s.labels.name, "protocol": protocol, "folds": k if cv_splits else 0,
                "examples": asdict(s.examples), "model": s.model.to_dict(),
                "train": s.train.to_dict(), "clips": len(s.utterances), "dropped_clips": dict(sorted(dropped.items())),
                "corpora": sorted({u.corpus for u in s.utterances}), "speakers": by_corpus(speakers),
                "training_only_speakers": training_only_speakers(speakers),
                "coefficient_scale": "fitted per fold, folded in at conversion" if s.fit_scale else "none",
                "robustness": robustness,
                "seconds": round(time.time() - started)}
    summary = write_report(out, s.labels.labels, folds, histories, settings,
                           calibration_summary(held_out) if held_out else None, loco=loco)
    print(json.dumps(summary, indent=1))
    return summary


def train_command(args: argparse.Namespace) -> None:
    """edge-ser-train's work: the evaluation the protocol asks for, then with --final the model to
    ship, into the same folder (its recipe points convert at the evaluation's report)."""
    if args.protocol == "none" and not args.final:
        raise TrainingError("--protocol none evaluates nothing: add --final to train the model to ship")
    if args.protocol == "none" and args.robustness:
        raise TrainingError("--robustness scores the cross-validation folds: use --protocol cv or both")
    s = settings_from(args)
    report = None
    if args.protocol != "none":
        cross_validate(s, args.folds, args.out, protocol=args.protocol, robustness=args.robustness)
        report = args.out / "metrics.json"
    if args.final:
        train_final(s, args.out, args.data, cv_report=report)


def main(argv: list[str] | None = None) -> int:
    """edge-ser-train's command line (the console script runs it through edge_ser_train.console)."""
    parser = argparse.ArgumentParser(prog="edge-ser-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser)
    parser.add_argument("--folds", type=at_least(2), default=5, help="cross-validation folds (by speaker)")
    parser.add_argument("--protocol", choices=(*PROTOCOLS, "none"), default="cv",
                        help="cv: k folds by speaker within every corpus; loco: leave one corpus out (train on "
                             "the others, test on it), once per corpus; both: the two, in one report; none: no "
                             "evaluation (with --final: only the model to ship)")
    parser.add_argument("--final", action="store_true",
                        help="also train the model to ship on every speaker: OUT/model.keras and its recipe, "
                             "for edge-ser-convert --model OUT/model.keras")
    parser.add_argument("--out", type=Path, default=Path("edge-ser-training"),
                        help="report and model folder (default: ./edge-ser-training)")
    parser.add_argument("--robustness", action="store_true",
                        help="also score every fold's int8 model on its test clips at -20 dB, in white and babble "
                             "noise (SNR 20/10/5 dB), reverberation (RT60 0.3/0.6 s) and telephone band: "
                             "robustness.md and metrics.json")
    return run_tool(parser, argv, train_command)


if __name__ == "__main__":
    sys.exit(main())
