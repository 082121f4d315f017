"""The deployable model of a recipe: trained on every speaker, saved as model.keras with the recipe
edge-ser-convert needs beside it.

One function for `edge-ser-train --final` and build_default, so the model a user trains and the
bundled one are made the same way. With the default fixed schedule (--val-speakers 0) every speaker
trains the weights; with --val-speakers N, N speakers decide when to stop and later verify the int8
conversion instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_ser_train.adaptation import adapt, fit_prior
from edge_ser_train.convert import save_recipe
from edge_ser_train.examples import build_examples
from edge_ser_train.fit import train_model
from edge_ser_train.folds import validation_speakers
from edge_ser_train.options import Settings
from edge_ser_train.progress import Progress
from edge_ser_train.quantisation_aware import grid_fine_tuned
from edge_ser_train.scaling import fit_coefficient_scale, fold_coefficient_scale

MODEL_FILE = "model.keras"


def absolute_source(spec: str) -> str:
    """A --data spec with its path made absolute, so the recipe still names the corpus when
    edge-ser-convert runs from another folder."""
    kind, sep, where = spec.partition("=")
    return f"{kind}={Path(where).expanduser().resolve()}" if sep else str(Path(spec).expanduser().resolve())


def train_final(s: Settings, out: Path, data: list[str], cv_report: Path | None = None,
                on_windows: Callable[[str], None] | None = None) -> tuple[Any, Path]:
    """Train on every speaker (less --val-speakers), write `out`/model.keras and its recipe; return
    (the model, its path). The recipe names the corpora (`data`) and, if the same run wrote one, the
    cross-validation report, so `edge-ser-convert --model out/model.keras` needs nothing else.
    It also records the training windows' fingerprint; `on_windows` hears it before training starts."""
    speakers = sorted({u.speaker for u in s.utterances if s.labels.index(u.label) is not None})
    held_out = validation_speakers(speakers, n=s.val_speakers)
    fit_speakers = [sp for sp in speakers if sp not in held_out]
    # babble (--room-augment) within each side, so no held-out voice is heard in training
    train_all, eval_all = build_examples(s.utterances, s.labels, s.examples, cache_dir=s.cache,
                                         babble_groups=[fit_speakers, held_out], progress=True)
    print(f"final model: training on {len(fit_speakers)} speakers, validation on {held_out or 'none'}", flush=True)
    train, validation = train_all.select_speakers(fit_speakers), eval_all.select_speakers(held_out)
    extra: dict[str, Any] = {"training_windows_sha256": train.fingerprint()}
    if on_windows is not None:
        on_windows(extra["training_windows_sha256"])
    if s.examples.adaptation is not None:  # the device's prior: fitted on every training speaker
        adaptation = fit_prior(train, s.examples.features, s.examples.adaptation)
        train, validation = (adapt(data, s.examples.features, adaptation, s.train.seed) for data in (train, validation))
        extra["adaptation"] = adaptation.to_dict()
    with Progress(s.train.members * s.train.max_epochs, "final model", "epochs") as progress:
        model, history = train_model(train, validation, s.labels.labels, s.model, s.train,
                                     log=lambda line: print(line, flush=True), progress=progress)
    scale = fit_coefficient_scale(train.x[train.copy == 0]) if s.fit_scale else ()
    if s.train.qat_epochs:  # on the grid with the scale folded in, as the CV does; convert must not fold again
        model = grid_fine_tuned(fold_coefficient_scale(model, scale) if scale else model, train, scale, s.train)
        extra["scale_folded"] = bool(scale)
    out.mkdir(parents=True, exist_ok=True)
    keras_path = out / MODEL_FILE
    model.save(keras_path)
    extra.update({"model": s.model.to_dict(), "train": s.train.to_dict(), "best_epoch": history.best_epoch + 1,
                  "coefficient_scale": list(scale), "data": [absolute_source(spec) for spec in data]})
    if cv_report is not None:
        extra["cv_report"] = os.path.relpath(cv_report.resolve(), out.resolve())  # the folder may move
    save_recipe(keras_path, s.labels, s.examples, fit_speakers, held_out, s.utterances, extra)
    print(f"wrote {keras_path} and {keras_path.with_suffix('.recipe.json').name}", flush=True)
    return model, keras_path
