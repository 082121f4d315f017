"""Tiny end to end: generated WAV corpus -> examples -> train (an ensemble of two) -> input scale folded in ->
verified int8 -> edge_ser predicts it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_ser.audio.wavfile import write_wav
from edge_ser.features.adaptation import AdaptationConfig
from edge_ser.features.config import FeatureConfig
from edge_ser.model.classifier import Classifier
from edge_ser.recognise.recogniser import Recogniser, analyse
from edge_ser_testing.synthetic import synthetic_clip
from edge_ser_train.adaptation import adapt, fit_prior
from edge_ser_train.convert import convert_and_write, load_recipe, save_recipe
from edge_ser_train.corpora import load_folders
from edge_ser_train.examples import ExampleConfig, build_examples
from edge_ser_train.fit import TrainConfig, train_model
from edge_ser_train.labels import LABEL_SETS
from edge_ser_train.models import ModelConfig
from edge_ser_train.scaling import apply_coefficient_scale, fit_coefficient_scale

pytestmark = pytest.mark.slow

LABELS = LABEL_SETS["four"]  # neutral, happy, sad, angry: one generated pitch each


def generated_corpus(root: Path) -> Path:
    """Four speakers, two takes of each of the four generated classes."""
    corpus = root / "corpus"
    for label_index, label in enumerate(LABELS.labels):
        (corpus / label).mkdir(parents=True)
        for speaker in range(4):
            for take in range(2):
                seed = 10 * speaker + take + 100 * label_index
                write_wav(corpus / label / f"spk{speaker}_{take}.wav", synthetic_clip(label_index, seed), 16000)
    return corpus


def test_train_convert_load_predict(tmp_path: Path) -> None:
    utterances = load_folders(generated_corpus(tmp_path))
    examples = ExampleConfig(FeatureConfig(), window_frames=50, train_hop_frames=10, device_hop_frames=25,
                             augmented_copies=1)
    train_all, eval_all = build_examples(utterances, LABELS, examples, workers=1)
    assert set(train_all.copy.tolist()) == {0, 1}  # the augmented copy made windows too
    fit, held_out = ["folders:spk0", "folders:spk1", "folders:spk2"], ["folders:spk3"]
    train = train_all.select_speakers(fit)
    scale = fit_coefficient_scale(train.x[train.copy == 0])
    scaled = apply_coefficient_scale(train, scale).x[train.copy == 0]
    np.testing.assert_allclose(scaled.reshape(-1, 20).std(axis=0), 1.0, rtol=1e-3)  # every coefficient alike
    model, history = train_model(train, eval_all.select_speakers(held_out), LABELS.labels,
                                 ModelConfig(width=8, depth=2),
                                 TrainConfig(max_epochs=12, batch_size=32, learning_rate=3e-3, patience=12, members=2),
                                 log=lambda _line: None)
    assert len(history.val_loss) == 12 and history.train_loss[-1] < history.train_loss[0]
    assert model.name == "edge_ser_ensemble" and len(model.layers) == 4  # input, two members, average
    keras_path = tmp_path / "model.keras"
    save_recipe(keras_path, LABELS, examples, fit, held_out, utterances, {"coefficient_scale": list(scale)})
    out = tmp_path / "model.tflite"
    calibration = {"temperature": 1.7, "fitted_on": "a CV report of this recipe"}
    manifest = convert_and_write(model, load_recipe(keras_path), utterances, out, name="e2e", version="0",
                                 cache=None, cv_metrics={"calibration": calibration})
    assert manifest.provenance["split"]["train_speakers"] == fit
    verification = manifest.metrics["verification"]
    assert verification["top1_agreement"] >= 0.9 and verification["clip_agreement"] >= 0.9
    assert 0 <= verification["int8_ties"] < 0.1
    assert manifest.features.coefficient_scale == scale  # the device divides by what training divided by

    classifier = Classifier(out, expected_features=FeatureConfig(coefficient_scale=scale))
    assert classifier.temperature == 1.7  # the CV's temperature travels in the manifest to the device
    assert classifier.labels == LABELS.labels
    recogniser = Recogniser.from_manifest(classifier)
    hits = [np.argmax(analyse(recogniser, synthetic_clip(k, 999 + k)).probabilities) == k
            for k in range(len(LABELS.labels))]
    assert sum(hits) >= 3, f"int8 model recognised only {sum(hits)} of 4 unseen generated clips"


def test_an_adapting_model_carries_its_prior_to_the_device(tmp_path: Path) -> None:
    """Speaker normalisation and pitch adaptation: the prior fitted on the training speakers goes into
    the recipe, the conversion verifies on windows streamed through the same adaptation, and the
    manifest hands the prior to the device's recogniser."""
    utterances = load_folders(generated_corpus(tmp_path))
    features = FeatureConfig(pitch=True, normalisation="speaker")
    examples = ExampleConfig(features, window_frames=50, train_hop_frames=10, device_hop_frames=25,
                             adaptation=AdaptationConfig())
    train_all, eval_all = build_examples(utterances, LABELS, examples, workers=1)
    assert np.abs(train_all.x[..., 0]).mean() > 50  # cut raw: c0 is an absolute level, not mean-removed
    fit, held_out = ["folders:spk0", "folders:spk1", "folders:spk2"], ["folders:spk3"]
    prior = fit_prior(train_all.select_speakers(fit), features, examples.adaptation)
    train = adapt(train_all.select_speakers(fit), features, prior, seed=0)
    model, _ = train_model(train, adapt(eval_all.select_speakers(held_out), features, prior, seed=0), LABELS.labels,
                           ModelConfig(width=8, depth=2),
                           TrainConfig(max_epochs=8, batch_size=32, learning_rate=3e-3, patience=8, members=1),
                           log=lambda _line: None)
    keras_path = tmp_path / "model.keras"
    save_recipe(keras_path, LABELS, examples, fit, held_out, utterances, {"adaptation": prior.to_dict()})
    out = tmp_path / "model.tflite"
    manifest = convert_and_write(model, load_recipe(keras_path), utterances, out, name="e2e", version="0", cache=None)
    assert manifest.adaptation == prior
    assert manifest.metrics["verification"]["top1_agreement"] >= 0.9

    recogniser = Recogniser.from_manifest(Classifier(out, expected_features=features))
    assert recogniser.adapter is not None and recogniser.adapter.frames == prior.prior_frames
    result = analyse(recogniser, synthetic_clip(2, 4242))
    assert result.probabilities is not None and recogniser.adapter.frames > prior.prior_frames
    recogniser.reset_adaptation()
    assert recogniser.adapter.frames == prior.prior_frames
