"""The JSON manifest that travels beside every `.tflite`: labels, features, window, quantisation.

The device takes labels and the feature config from here and nowhere else, so a model and the
features it was trained on can never drift apart silently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_ser.errors import ConfigError, ModelError, read_user_file
from edge_ser.features.adaptation import AdaptationConfig
from edge_ser.features.config import SPEAKER_NORMALISATIONS, FeatureConfig
from edge_ser.model.calibration import Calibration

MANIFEST_FORMAT = 1


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
            labels = tuple(str(x) for x in data["labels"])
            if not labels or len(set(labels)) != len(labels):
                raise ModelError(f"{source}: labels must be a non-empty list without duplicates")
            window = data["window"]
            features = FeatureConfig.from_dict(dict(data["features"]))
            adaptation = _adaptation(data.get("adaptation"), features, source)
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                labels=labels,
                features=features,
                window_frames=int(window["frames"]),
                hop_frames=int(window["hop_frames"]),
                input=Quantisation(**data["input"]),
                output=Quantisation(**data["output"]),
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
        if not isinstance(data, dict):
            raise ModelError(f"{path}: manifest must be a JSON object")
        return cls.from_dict(data, source=str(path))


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
