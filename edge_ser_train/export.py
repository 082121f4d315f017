"""Keras model -> int8 TFLite (full-integer, or all but the output layer) and the manifest beside it.

Why `TFLiteConverter.from_keras_model`: with Keras 3, `tf.saved_model.save` followed by
`from_saved_model` silently produces a model without weights (it outputs NaN). Converting from
the live Keras object avoids that path; `int8_predict` lets callers check the result against the
float model before anything is written.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_ser.features.adaptation import AdaptationConfig
from edge_ser.features.config import FeatureConfig
from edge_ser.model.calibration import Calibration
from edge_ser.model.manifest import Manifest, Quantisation, manifest_path, sha256_file
from edge_ser_train.models import OUTPUT_LAYERS

CALIBRATION_EXAMPLES = 400


FLOAT_OUTPUT_OPS = ["FULLY_CONNECTED", "SOFTMAX"]  # the classifier's last dense layer and its softmax


def to_int8_tflite(model: Any, calibration: np.ndarray, *, seed: int = 0, output_layer: str = "int8") -> bytes:
    """Post-training full-integer quantisation, calibrated on real (training) feature windows.

    `calibration` is (n, window_frames, n_features) float32; at most CALIBRATION_EXAMPLES are drawn at
    random, which is plenty for per-tensor activation ranges and keeps conversion to seconds.

    `output_layer="float"` keeps the last dense layer and its softmax in float32 (selective
    quantisation; the file's input and output become float32, quantised and dequantised inside).
    Why: its int8 output spans every class's logit on every calibration window (about -9..+12, a step
    of 0.08), so when the two best classes are closer than a step they tie and the int8 argmax picks
    the first; that was 2-5 % of the held-out windows per fold and most of the int8/float
    disagreement. The float layer costs a few hundred multiply-adds and ~2 KB of weights.
    """
    import tensorflow as tf

    if calibration.ndim != 3 or len(calibration) == 0:
        raise ValueError("calibration must be a non-empty (n, frames, coefficients) array")
    if output_layer not in OUTPUT_LAYERS:
        raise ValueError(f"output_layer must be one of {OUTPUT_LAYERS}, not {output_layer!r}")
    rng = np.random.default_rng(seed)
    take = rng.permutation(len(calibration))[:CALIBRATION_EXAMPLES]
    sample = calibration[take].astype(np.float32)

    def representative() -> Iterator[list[np.ndarray]]:
        for x in sample:
            yield [x[None, ...]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    # Keras prints the exported graph's signature (a line per weight tensor) on stdout: not ours to show.
    with contextlib.redirect_stdout(io.StringIO()):
        if output_layer == "int8":
            return bytes(converter.convert())
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=FLOAT_OUTPUT_OPS)
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=representative,
                                                             debug_options=options)
        return bytes(debugger.get_nondebug_quantized_model())


def _interpreter(tflite: bytes) -> Any:
    from edge_ser.model.classifier import load_interpreter_class

    _, interpreter_class = load_interpreter_class()
    interpreter = interpreter_class(model_content=tflite)
    interpreter.allocate_tensors()
    return interpreter


def file_quantisation(tflite: bytes) -> tuple[Quantisation, Quantisation]:
    """(input, output) quantisation as the runtime will read it from the file."""
    from edge_ser.model.classifier import tensor_quantisation

    interpreter = _interpreter(tflite)
    return (tensor_quantisation(interpreter.get_input_details()[0]),
            tensor_quantisation(interpreter.get_output_details()[0]))


def int8_predict(tflite: bytes, windows: np.ndarray) -> np.ndarray:
    """Dequantised outputs of the int8 model for a batch of float windows, one invoke per window,
    exactly as the device does it (the file's batch dimension is fixed at 1)."""
    from edge_ser.model.classifier import dequantise, quantise, tensor_quantisation

    interpreter = _interpreter(tflite)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    q_in, q_out = tensor_quantisation(inp), tensor_quantisation(out)
    probs = np.empty((len(windows), int(np.prod(out["shape"]))), dtype=np.float32)
    for i, window in enumerate(windows):
        interpreter.set_tensor(inp["index"], quantise(window[None, ...], q_in))
        interpreter.invoke()
        probs[i] = dequantise(interpreter.get_tensor(out["index"]), q_out)[0]
    return probs


def write_model(path: str | Path, tflite: bytes, *, name: str, version: str, labels: tuple[str, ...],
                features: FeatureConfig, window_frames: int, hop_frames: int, gate: dict[str, Any] | None = None,
                provenance: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                calibration: Calibration | None = None, adaptation: AdaptationConfig | None = None) -> Manifest:
    """Write NAME.tflite and NAME.json (with the file's sha256 and quantisation); return the manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tflite)
    q_in, q_out = file_quantisation(tflite)
    manifest = Manifest(name=name, version=version, labels=tuple(labels), features=features,
                        window_frames=window_frames, hop_frames=hop_frames, input=q_in, output=q_out,
                        sha256=sha256_file(path), provenance=provenance or {}, metrics=metrics or {},
                        gate=gate or {}, calibration=calibration, adaptation=adaptation)
    manifest.save(manifest_path(path))
    return manifest
