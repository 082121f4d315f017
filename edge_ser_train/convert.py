"""edge-ser-convert: a trained Keras model -> verified int8 TFLite + manifest, or a refusal.

    edge-ser-train --data ravdess=../shared/data/ravdess --out runs/mine --final
    edge-ser-convert --model runs/mine/model.keras       # -> runs/mine/model.tflite and model.json
    edge-ser predict --model runs/mine/model.tflite clip.wav

The recipe saved beside the Keras model (`model.recipe.json`: labels, features, windows, which
speakers trained and which were held out, the corpora and the cross-validation report of the same
run) says how to rebuild the calibration windows (training speakers) and the verification windows
(held-out speakers). Nothing is written unless the int8 model agrees with the float model on the
held-out speakers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from edge_ser.errors import ModelError
from edge_ser.features.adaptation import AdaptationConfig
from edge_ser.features.config import FeatureConfig
from edge_ser.model.calibration import Calibration
from edge_ser.model.manifest import Manifest, manifest_path
from edge_ser.recognise.gate import GateConfig
from edge_ser_train.adaptation import adapt
from edge_ser_train.console import run_tool
from edge_ser_train.corpora import Utterance, combine, load_source
from edge_ser_train.errors import TrainingError
from edge_ser_train.evaluate import Comparison, compare
from edge_ser_train.examples import ExampleConfig, ExampleSet, build_examples
from edge_ser_train.export import to_int8_tflite, write_model
from edge_ser_train.labels import LabelSet, label_set
from edge_ser_train.models import load_model
from edge_ser_train.options import DEFAULT_CACHE
from edge_ser_train.room import RoomAugment
from edge_ser_train.scaling import apply_coefficient_scale, fold_coefficient_scale

MIN_AGREEMENT = 0.90  # below this the conversion is broken, not merely lossy
MAX_UA_DROP = 0.05
RAVDESS_LICENCE = ("CC BY-NC-SA 4.0; Livingstone SR, Russo FA (2018) The Ryerson Audio-Visual Database of "
                   "Emotional Speech and Song (RAVDESS). PLoS ONE 13(5): e0196391")


class ConversionRefused(ModelError):
    """The int8 model does not reproduce the float model well enough to ship: reported like any
    other model a user cannot use, in one line without a traceback."""


def verified_int8(model: Any, calibration: ExampleSet, held_out: ExampleSet, labels: tuple[str, ...],
                  min_agreement: float = MIN_AGREEMENT, max_ua_drop: float = MAX_UA_DROP,
                  output_layer: str = "int8") -> tuple[bytes, Comparison]:
    """Convert with calibration windows, compare on held-out windows, raise ConversionRefused on failure."""
    tflite = to_int8_tflite(model, calibration.x[calibration.copy == 0], output_layer=output_layer)
    comparison = compare(model, tflite, held_out, labels)
    problems = comparison.problems(min_agreement, max_ua_drop)
    if problems:
        raise ConversionRefused("refusing to write the int8 model: " + "; ".join(problems))
    return tflite, comparison


def recipe_path(keras_path: Path) -> Path:
    return keras_path.with_suffix(".recipe.json")


RECIPE_KEYS = ("labels", "examples", "train_speakers", "held_out_speakers", "corpora")


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object a user named (directly or beside a model), or a TrainingError saying why not."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrainingError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainingError(f"{path}: cannot read the {what}: {exc}") from None
    if not isinstance(data, dict):
        raise TrainingError(f"{path}: the {what} is not a JSON object")
    return data


def load_recipe(keras_path: Path) -> dict[str, Any]:
    """The recipe saved beside a Keras model by edge-ser-train/build_default."""
    recipe = read_json(recipe_path(keras_path), "recipe (written beside the model when it was trained)")
    missing = [key for key in RECIPE_KEYS if key not in recipe]
    if missing:
        raise TrainingError(f"{recipe_path(keras_path)}: the recipe lacks {', '.join(missing)}")
    label_set(recipe["labels"])  # an unknown label set is refused now, not after TensorFlow has loaded
    return recipe


def save_recipe(keras_path: Path, labels: LabelSet, examples: ExampleConfig, train_speakers: list[str],
                held_out_speakers: list[str], utterances: list[Utterance], extra: dict[str, Any]) -> None:
    """What convert needs to rebuild the calibration and verification windows of this model."""
    recipe = {"labels": labels.name, "examples": asdict(examples), "train_speakers": train_speakers,
              "held_out_speakers": held_out_speakers, "corpora": sorted({u.corpus for u in utterances}),
              **extra}
    recipe_path(keras_path).write_text(json.dumps(recipe, indent=1, default=str) + "\n")


def examples_from_recipe(recipe: dict[str, Any]) -> ExampleConfig:
    fields = dict(recipe["examples"])
    fields["features"] = FeatureConfig.from_dict(fields["features"])
    if fields.get("adaptation"):
        fields["adaptation"] = AdaptationConfig.from_dict(fields["adaptation"])
    fields["vtlp"] = tuple(fields["vtlp"]) if fields["vtlp"] else None
    fields["gate"] = GateConfig(**fields.get("gate", {}))  # recipes older than the recorded gate: defaults
    # JSON has no tuples; recipes older than the recorded room shares: defaults.
    fields["room"] = RoomAugment(**{key: tuple(value) if isinstance(value, list) else value
                                    for key, value in fields.get("room", {}).items()})
    return ExampleConfig(**fields)


def convert_and_write(model: Any, recipe: dict[str, Any], utterances: list[Utterance], out: Path, *,
                      name: str, version: str, cache: Path | None = DEFAULT_CACHE,
                      cv_metrics: dict[str, Any] | None = None, min_agreement: float = MIN_AGREEMENT,
                      max_ua_drop: float = MAX_UA_DROP) -> Manifest:
    """Rebuild windows, convert, verify, and write out + manifest (provenance and metrics included)."""
    labels = label_set(recipe["labels"])
    examples = examples_from_recipe(recipe)
    train_all, eval_all = build_examples(utterances, labels, examples, cache_dir=cache)
    calibration = train_all.select_speakers(recipe["train_speakers"], copies=False)
    # Without held-out speakers (a fixed schedule trained on all of them) the conversion is checked
    # on the training speakers' original windows: still the same int8-vs-float comparison.
    verification_speakers = recipe["held_out_speakers"] or recipe["train_speakers"]
    held_out = eval_all.select_speakers(verification_speakers)
    adaptation = AdaptationConfig.from_dict(recipe["adaptation"]) if examples.adaptation is not None else None
    if adaptation is not None:  # the prior the model was trained with, the same simulated streams
        seed = int(recipe.get("train", {}).get("seed", 0))
        calibration, held_out = (adapt(data, examples.features, adaptation, seed) for data in (calibration, held_out))
    scale = tuple(recipe.get("coefficient_scale") or ())
    features = replace(examples.features, coefficient_scale=scale)
    if scale:  # trained on unscaled windows: fold the scale into its first convolution (unless training did)
        if not recipe.get("scale_folded"):
            model = fold_coefficient_scale(model, scale)
        calibration, held_out = apply_coefficient_scale(calibration, scale), apply_coefficient_scale(held_out, scale)
    # Recipes older than the choice quantised every layer.
    output_layer = recipe.get("model", {}).get("output_layer", "int8")
    tflite, comparison = verified_int8(model, calibration, held_out, labels.labels, min_agreement, max_ua_drop,
                                       output_layer)
    corpora = recipe["corpora"]
    provenance = {
        "corpora": corpora,
        "licence": RAVDESS_LICENCE if corpora == ["ravdess"] else "see the licences of: " + ", ".join(corpora),
        "split": {"train_speakers": recipe["train_speakers"],
                  "held_out_speakers": recipe["held_out_speakers"]},
        "label_set": labels.name, "merged": labels.merge,
        # the corpora's paths on the build machine (`data`) stay in the recipe: they say nothing about the
        # model, and a shipped manifest should not carry its builder's file system
        "training": {k: v for k, v in recipe.items() if k not in ("train_speakers", "held_out_speakers", "data")},
        "date": datetime.date.today().isoformat(),
    }
    note = ("early-stopping speakers: not trained on, but chose the epoch" if recipe["held_out_speakers"] else
            "training speakers (none held out): checks the int8 conversion, not accuracy on new speakers")
    metrics = {"verification": {"speakers": verification_speakers,
                                "float_clip_ua": comparison.float_scores["clip"]["ua"],
                                "int8_clip_ua": comparison.int8_scores["clip"]["ua"],
                                "top1_agreement": comparison.top1_agreement,
                                "clip_agreement": comparison.clip_agreement, "int8_ties": comparison.int8_ties,
                                "note": note}}
    if cv_metrics:
        metrics["cross_validation"] = cv_metrics
    return write_model(out, tflite, name=name, version=version, labels=labels.labels,
                       features=features, window_frames=examples.window_frames,
                       hop_frames=examples.device_hop_frames, gate=asdict(examples.gate), provenance=provenance,
                       metrics=metrics, calibration=cv_calibration(cv_metrics), adaptation=adaptation)


def cv_calibration(cv_metrics: dict[str, Any] | None) -> Calibration | None:
    """The temperature a cross-validation run of the same recipe fitted on its held-out folds
    (edge_ser_train.calibration); None (T = 1) without a report or for reports older than it.
    `cv_metrics` is a report's summary (edge-ser-convert) or wraps it (build_default)."""
    cv = cv_metrics or {}
    block = cv.get("calibration") or cv.get("summary", {}).get("calibration")
    if not block:
        return None
    return Calibration(float(block["temperature"]), str(block["fitted_on"]))


def convert_command(args: argparse.Namespace) -> Manifest:
    """edge-ser-convert's work: every input is checked before TensorFlow is loaded, so a mistyped
    path fails in a second, not after the import."""
    if not args.model.is_file():
        raise TrainingError(f"{args.model}: Keras model not found")
    recipe = load_recipe(args.model)
    cv_report = args.cv_report or (args.model.parent / recipe["cv_report"] if recipe.get("cv_report") else None)
    cv = None
    if cv_report:
        cv = read_json(cv_report, "cross-validation report").get("summary")
        if cv is None:
            raise TrainingError(f"{cv_report}: no summary: not a metrics.json of edge-ser-train")
    data = args.data or recipe.get("data")
    if not data:
        raise TrainingError(f"{recipe_path(args.model)}: the recipe does not name the corpora it was trained on: "
                            "give them with --data")
    utterances = combine(load_source(spec) for spec in data)
    out = args.out or args.model.with_suffix(".tflite")
    manifest = convert_and_write(load_model(args.model), recipe, utterances, out, name=args.name,
                                 version=args.version, cache=args.cache, cv_metrics=cv,
                                 min_agreement=args.min_agreement, max_ua_drop=args.max_ua_drop)
    print(f"wrote {out} ({out.stat().st_size} bytes) and {manifest_path(out).name}; held-out "
          f"{json.dumps(manifest.metrics['verification'])}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """edge-ser-convert's command line (the console script runs it through edge_ser_train.console)."""
    parser = argparse.ArgumentParser(prog="edge-ser-convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a .keras file with its .recipe.json")
    parser.add_argument("--data", action="append", metavar="[KIND=]PATH",
                        help="the corpora it was trained on (as for edge-ser-train; default: those the recipe "
                             "names)")
    parser.add_argument("--out", type=Path,
                        help="NAME.tflite; NAME.json is written beside it (default: beside the Keras model, "
                             "model.tflite)")
    parser.add_argument("--name", default="edge-ser")
    parser.add_argument("--version", default="1")
    parser.add_argument("--cv-report", type=Path,
                        help="metrics.json of edge-ser-train to copy into the manifest (default: the one the "
                             "recipe names, when the same run cross-validated)")
    parser.add_argument("--min-agreement", type=float, default=MIN_AGREEMENT)
    parser.add_argument("--max-ua-drop", type=float, default=MAX_UA_DROP)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    return run_tool(parser, argv, convert_command)


if __name__ == "__main__":
    sys.exit(main())
