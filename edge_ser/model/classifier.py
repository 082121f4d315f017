"""The int8 TFLite classifier: interpreter choice, manifest checks, (de)quantisation.

Interpreters are tried in order of speed and size: `ai_edge_litert` (current LiteRT, works with
NumPy 2), `tflite_runtime` (the only choice on 32-bit Raspberry Pi OS), then full TensorFlow as a
last resort on build machines. The model is refused at load time, with a message naming the file,
when it does not fit its manifest or the features this runtime computes.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_ser.errors import ModelError
from edge_ser.features.config import FeatureConfig
from edge_ser.model.calibration import apply_temperature
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.model.manifest import Manifest, Quantisation, manifest_path, sha256_file
from edge_ser.native_stderr import filtered_stderr

BACKENDS: dict[str, str] = {
    "ai-edge-litert": "ai_edge_litert.interpreter",
    "tflite-runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow.lite.python.interpreter",
}
BACKEND_ENV = "EDGE_SER_TFLITE_BACKEND"

log = logging.getLogger("edge_ser.model.classifier")


def load_interpreter_class(preferred: str | None = None) -> tuple[str, Callable[..., Any]]:
    """Return (backend name, Interpreter class): `preferred` (or $EDGE_SER_TFLITE_BACKEND) only,
    or the first importable backend."""
    preferred = preferred or os.environ.get(BACKEND_ENV) or None
    if preferred is not None and preferred not in BACKENDS:
        raise ModelError(f"unknown TFLite backend {preferred!r}; choose one of {', '.join(BACKENDS)}")
    names = [preferred] if preferred else list(BACKENDS)
    failures = []
    for name in names:
        try:
            module = importlib.import_module(BACKENDS[name])
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        return name, module.Interpreter
    raise ModelError("no TFLite interpreter available (" + "; ".join(failures)
                     + "); install ai-edge-litert, or tflite-runtime on 32-bit ARM")


def quantise(values: np.ndarray, q: Quantisation) -> np.ndarray:
    """Real values to the model's input dtype with its affine parameters."""
    if q.dtype == "float32":
        return values.astype(np.float32)
    info = np.iinfo(np.dtype(q.dtype))
    scaled = np.round(values / q.scale + q.zero_point)
    return np.clip(scaled, info.min, info.max).astype(q.dtype)


def dequantise(values: np.ndarray, q: Quantisation) -> np.ndarray:
    """Model output back to real values."""
    if q.dtype == "float32":
        return values.astype(np.float32)
    return (q.scale * (values.astype(np.float32) - q.zero_point)).astype(np.float32)


def tensor_quantisation(detail: dict[str, Any]) -> Quantisation:
    """A tensor's quantisation as the interpreter reports it; float tensors (reported with scale 0)
    as plain float32, so a manifest written from a file and the file compare equal."""
    dtype = np.dtype(detail["dtype"]).name
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if dtype == "float32":
        return Quantisation("float32")
    return Quantisation(dtype, float(scale), int(zero_point))


class Classifier:
    """A `.tflite` model and its manifest, checked against each other and against the runtime."""

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, *, num_threads: int = 1,
                 expected_features: FeatureConfig | None = None, backend: str | None = None) -> None:
        self.path = Path(model_path)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found")
        self.manifest = Manifest.load(manifest_path(self.path))
        digest = sha256_file(self.path)
        if digest != self.manifest.sha256:
            raise ModelError(f"{self.path}: sha256 {digest[:12]}… does not match its manifest "
                             f"({self.manifest.sha256[:12]}…): model and manifest are from different builds")
        if expected_features is not None and expected_features != self.manifest.features:
            raise ModelError(f"{self.path}: trained on other features than this runtime computes: "
                             + _feature_diff(self.manifest.features, expected_features))
        self.backend, interpreter_class = load_interpreter_class(backend)
        try:
            with filtered_stderr():
                self._interpreter = interpreter_class(model_path=str(self.path), num_threads=num_threads)
                self._interpreter.allocate_tensors()
        except Exception as exc:
            raise ModelError(f"{self.path}: not a loadable TFLite model: {_first_line(exc)}") from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: expected one input and one output tensor, "
                             f"found {len(inputs)} and {len(outputs)}")
        self._input, self._output = inputs[0], outputs[0]
        self._check_tensors()
        self.temperature = 1.0 if self.manifest.calibration is None else self.manifest.calibration.temperature
        log.info("model %s %s (%s) on %s, %d thread(s)", self.manifest.name, self.manifest.version,
                 self.path, self.backend, num_threads)

    def _check_tensors(self) -> None:
        m = self.manifest
        want_shape = [1, m.window_frames, m.features.n_features]
        shape = [int(x) for x in self._input["shape"]]
        if shape != want_shape:
            raise ModelError(f"{self.path}: input shape {shape} does not match the manifest "
                             f"(window of {m.window_frames} frames x {m.features.n_features} feature columns)")
        actual_in = tensor_quantisation(self._input)
        actual_out = tensor_quantisation(self._output)
        for what, actual, declared in (("input", actual_in, m.input), ("output", actual_out, m.output)):
            if actual.dtype != declared.dtype:
                raise ModelError(f"{self.path}: {what} dtype is {actual.dtype}, manifest says {declared.dtype}")
            if not np.isclose(actual.scale, declared.scale, rtol=1e-6) or actual.zero_point != declared.zero_point:
                raise ModelError(f"{self.path}: {what} quantisation (scale {actual.scale}, zero point "
                                 f"{actual.zero_point}) does not match the manifest")
        n_out = int(np.prod(self._output["shape"]))
        if n_out != len(m.labels):
            raise ModelError(f"{self.path}: model has {n_out} outputs but the manifest lists "
                             f"{len(m.labels)} labels")

    @property
    def labels(self) -> tuple[str, ...]:
        return self.manifest.labels

    def predict(self, window: np.ndarray) -> np.ndarray:
        """Probabilities (summing to 1) for one normalised window of shape (frames, n_features),
        temperature-scaled when the manifest has a calibration (the one place it is applied, so every
        window, utterance mean and state downstream sees calibrated numbers)."""
        x = quantise(window[None, ...], self.manifest.input)
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        raw = dequantise(self._interpreter.get_tensor(self._output["index"]), self.manifest.output)[0]
        raw = np.maximum(raw, 0.0)
        total = float(raw.sum())
        # An int8 softmax can round every class to zero; fall back to uniform rather than NaN.
        probabilities = raw / total if total > 0 else np.full_like(raw, 1.0 / len(raw))
        return apply_temperature(probabilities, self.temperature)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _feature_diff(model: FeatureConfig, runtime: FeatureConfig) -> str:
    a, b = model.to_dict(), runtime.to_dict()
    return ", ".join(f"{k} model={a[k]!r} runtime={b[k]!r}" for k in a if a[k] != b[k])
