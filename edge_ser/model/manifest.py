"""The JSON manifest that travels beside every `.tflite`: labels, features, window, quantisation.

The device takes labels and the feature config from here and nowhere else, so a model and the
features it was trained on can never drift apart silently.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_ser.errors import ConfigError, ModelError, read_user_file
from edge_ser.features.adaptation import AdaptationConfig
from edge_ser.features.config import SPEAKER_NORMALISATIONS, FeatureConfig
from edge_ser.model.calibration import Calibration

MANIFEST_FORMAT = 1
QUANTISED_DTYPES = ("int8", "uint8", "float32")


@dataclass(frozen=True)
class Quantisation:
    """Affine int8 quantisation of a tensor: real = scale * (q - zero_point)."""

    dtype: str  # "int8", "uint8" or "float32"
    scale: float = 1.0
    zero_point: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class Manifest:
    """Everything the runtime needs to know about a model, and what it was trained on."""

    name: str
    version: str
    labels: tuple[str, ...]
    features: FeatureConfig
    window_frames: int  # frames per analysis window (model input length)
    hop_frames: int  # frames between consecutive windows on the device
    input: Quantisation
    output: Quantisation
    sha256: str
    provenance: dict[str, Any] = field(default_factory=dict)
    # The voice gate settings the training windows were cut with (recognise.gate.GateConfig fields),
    # so `predict` cuts the same windows. Kept as plain values: the model layer sits below the gate.
    # Empty in manifests written before it was recorded: the runtime then uses its defaults.
    gate: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # Temperature scaling of the outputs (model.calibration). None in manifests without the block:
    # T = 1, and `to_dict` leaves the block out, so such manifests round-trip unchanged.
    calibration: Calibration | None = None
    # Speaker adaptation (features.adaptation) and the prior it starts from; None: the model's
    # windows are normalised on their own, as in every model before 3.0.0.
    adaptation: AdaptationConfig | None = None

    @property
    def window_seconds(self) -> float:
        return self.window_frames * self.features.frame_seconds

    @property
    def hop_seconds(self) -> float:
        return self.hop_frames * self.features.frame_seconds

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "version": self.version,
            "labels": list(self.labels),
            "features": self.features.to_dict(),
            "gate": dict(self.gate),
            "window": {"frames": self.window_frames, "hop_frames": self.hop_frames,
                       "seconds": self.window_seconds, "hop_seconds": self.hop_seconds},
            "input": self.input.to_dict(),
            "output": self.output.to_dict(),
            "sha256": self.sha256,
            "provenance": self.provenance,
            "metrics": self.metrics,
        }
        if self.calibration is not None:
            data["calibration"] = self.calibration.to_dict()
        if self.adaptation is not None:
            data["adaptation"] = self.adaptation.to_dict()
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "manifest") -> Manifest:
        try:
            if data.get("format") != MANIFEST_FORMAT:
                raise ModelError(f"{source}: manifest format {data.get('format')!r} is not supported "
                                 f"(this runtime reads format {MANIFEST_FORMAT})")
            raw_labels = data["labels"]
            if not isinstance(raw_labels, list) or not all(isinstance(x, str) and x for x in raw_labels):
                raise ModelError(f"{source}: labels must be a list of non-empty strings")
            labels = tuple(raw_labels)
            if not labels or len(set(labels)) != len(labels):
                raise ModelError(f"{source}: labels must be a non-empty list without duplicates")
            window = data["window"]
            features = FeatureConfig.from_dict(dict(data["features"]))
            adaptation = _adaptation(data.get("adaptation"), features, source)
            window_frames, hop_frames = _frames(window, "frames", source), _frames(window, "hop_frames", source)
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                labels=labels,
                features=features,
                window_frames=window_frames,
                hop_frames=hop_frames,
                input=_quantisation(data, "input", source),
                output=_quantisation(data, "output", source),
                sha256=str(data["sha256"]),
                provenance=dict(data.get("provenance", {})),
                metrics=dict(data.get("metrics", {})),
                gate=dict(data.get("gate", {})),
                calibration=_calibration(data.get("calibration"), source),
                adaptation=adaptation,
            )
        except ModelError:
            raise
        except ConfigError as exc:
            raise ModelError(f"{source}: {exc}") from None
        except KeyError as exc:
            raise ModelError(f"{source}: manifest lacks the key {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{source}: malformed manifest: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        path = Path(path)
        text = read_user_file(path, "manifest", ModelError, " (every .tflite needs its .json beside it)")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path}: manifest is not valid JSON: {exc}") from None
        except RecursionError:
            raise ModelError(f"{path}: manifest is not a manifest: JSON nested too deeply") from None
        if not isinstance(data, dict):
            raise ModelError(f"{path}: manifest must be a JSON object")
        return cls.from_dict(data, source=str(path))


def _frames(window: Any, key: str, source: str) -> int:
    """``window[key]`` as a positive whole number of frames: a JSON float like ``1e400`` or ``2.5``
    is a broken manifest, not a number to round."""
    value = window[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{source}: window.{key} must be a positive integer, got {value!r}")
    return value


def _quantisation(data: dict[str, Any], key: str, source: str) -> Quantisation:
    """``data[key]`` as a Quantisation, checked here rather than where a wrong value would first
    break the classifier's arithmetic (a zero scale, a string zero point)."""
    block = data[key]
    if not isinstance(block, dict):
        raise ModelError(f"{source}: {key} must be an object like {{\"dtype\": \"int8\", \"scale\": 0.1, ...}}")
    q = Quantisation(**block)
    if q.dtype not in QUANTISED_DTYPES:
        raise ModelError(f"{source}: {key}.dtype must be one of {', '.join(QUANTISED_DTYPES)}, got {q.dtype!r}")
    if q.dtype != "float32" and (isinstance(q.scale, bool) or not isinstance(q.scale, int | float)
                                 or not math.isfinite(q.scale) or q.scale <= 0):
        raise ModelError(f"{source}: {key}.scale must be a positive number, got {q.scale!r}")
    if isinstance(q.zero_point, bool) or not isinstance(q.zero_point, int):
        raise ModelError(f"{source}: {key}.zero_point must be an integer, got {q.zero_point!r}")
    return q


def _calibration(block: Any, source: str) -> Calibration | None:
    if block is None:
        return None
    if not isinstance(block, dict):
        raise ModelError(f"{source}: calibration must be an object like {{\"temperature\": 1.3}}")
    try:
        return Calibration.from_dict(block)
    except KeyError:
        raise ModelError(f"{source}: calibration lacks the key 'temperature'") from None
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{source}: {exc}") from None


def _adaptation(block: Any, features: FeatureConfig, source: str) -> AdaptationConfig | None:
    if block is None:
        if features.normalisation in SPEAKER_NORMALISATIONS:
            raise ModelError(f"{source}: normalisation {features.normalisation!r} needs an 'adaptation' block")
        return None
    if not isinstance(block, dict):
        raise ModelError(f"{source}: adaptation must be an object")
    adaptation = AdaptationConfig.from_dict(block)  # ConfigError: the caller names the file
    adaptation.check(features)
    return adaptation


def manifest_path(model_path: str | Path) -> Path:
    """`NAME.tflite` -> `NAME.json`."""
    return Path(model_path).with_suffix(".json")


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
