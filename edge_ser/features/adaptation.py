"""Speaker adaptation: running statistics of the voice a device has been hearing.

A device hears the same few people for hours. Per-window normalisation throws that away: it cannot
tell a loud window of a quiet speaker from a normal window of a loud one, and an absolute pitch
reference (150 Hz) calls every woman's voice "raised" and every man's "low". `SpeakerAdapter`
keeps, over the frames of the windows it has classified:

- a running mean (and variance) of the raw cepstra, so a window can be normalised against the
  speaker's usual level and spectral shape instead of its own mean ("speaker" normalisation);
  with `voiced_only`, of the voiced frames alone: the pauses and unvoiced frames between words
  carry the room's noise floor rather than the voice, so counting them lets background noise
  and the amount of silence a speaker leaves shift the reference;
- a running histogram of voiced log-F0, whose median replaces the fixed pitch reference.

Both start from a prior fitted on the training data (the first utterance is normalised sensibly)
with the weight of `prior_frames` frames, and are running averages until `horizon_frames` frames
have been counted, exponentially weighted after that (a new voice takes over in about a minute of
speech). Everything is causal: a window is normalised with statistics of the frames heard up to its
own end, which the device has when it classifies it. Training runs the same class over each
speaker's clips in a random order (edge_ser_train.adaptation), so a model never learns from
statistics a device could not have had.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_ser.errors import ConfigError
from edge_ser.features.config import FeatureConfig, refuse_unknown_keys
from edge_ser.features.pitch import PITCH_REFERENCE_HZ, VOICING_THRESHOLD

F0_BIN_OCTAVES = 1 / 24  # quarter-tone bins of the log-F0 histogram


@dataclass(frozen=True)
class AdaptationConfig:
    """How a model adapts to its speaker, and the prior it starts from; stored in the manifest."""

    pitch: bool = True  # log-F0 relative to the speaker's running median F0, not to 150 Hz
    prior_frames: float = 100.0  # weight of the prior, in frames (1 s of speech: the first window dominates)
    horizon_frames: float = 6000.0  # most frames the statistics average over (1 min of speech)
    prior_mean: tuple[float, ...] = ()  # raw cepstra of the training speech, per coefficient
    prior_var: tuple[float, ...] = ()
    prior_f0_hz: float = PITCH_REFERENCE_HZ  # median F0 of the training speech's voiced frames
    voiced_only: bool = False  # cepstral statistics of voiced frames only (needs the pitch columns)

    def __post_init__(self) -> None:
        if not 0 < self.prior_frames <= self.horizon_frames:
            raise ConfigError("adaptation: need 0 < prior_frames <= horizon_frames")
        if len(self.prior_mean) != len(self.prior_var) or any(v <= 0 for v in self.prior_var):
            raise ConfigError("adaptation: prior_mean and prior_var need one value per cepstrum, variances > 0")
        if not 20.0 <= self.prior_f0_hz <= 1000.0:
            raise ConfigError("adaptation: prior_f0_hz must be between 20 and 1000")

    def check(self, features: FeatureConfig) -> None:
        """Refuse a prior that does not fit the features it is meant for."""
        if len(self.prior_mean) != features.n_mfcc:
            raise ConfigError(f"adaptation: the prior has {len(self.prior_mean)} cepstra, the features "
                              f"{features.n_mfcc}")
        if (self.pitch or self.voiced_only) and not features.pitch:
            raise ConfigError("adaptation: pitch adaptation and voiced_only need the pitch columns")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptationConfig:
        refuse_unknown_keys(cls, data, "adaptation: unknown keys")
        fields = dict(data)
        for key in ("prior_mean", "prior_var"):
            if isinstance(fields.get(key), list):
                fields[key] = tuple(float(v) for v in fields[key])
        try:
            return cls(**fields)
        except TypeError as exc:
            raise ConfigError(f"adaptation: {exc}") from None


@dataclass(frozen=True)
class SpeakerReference:
    """What a window is normalised against: the running statistics at its end."""

    mean: np.ndarray  # (n_mfcc,) float32
    std: np.ndarray  # (n_mfcc,) float32
    log_f0: float  # log2(median F0 / PITCH_REFERENCE_HZ), 0.0 when pitch is not adapted


def _f0_bins(features: FeatureConfig) -> np.ndarray:
    """Edges of the log2(F0 / 150 Hz) histogram, covering the pitch search range."""
    low = np.log2(features.pitch_fmin / PITCH_REFERENCE_HZ)
    high = np.log2(features.pitch_fmax / PITCH_REFERENCE_HZ)
    return np.arange(low, high + F0_BIN_OCTAVES, F0_BIN_OCTAVES)


class SpeakerAdapter:
    """The running statistics of one device (one stream of speakers); see the module docstring."""

    def __init__(self, features: FeatureConfig, config: AdaptationConfig) -> None:
        config.check(features)
        self.features, self.config = features, config
        self._edges = _f0_bins(features)
        self.reset()

    def reset(self) -> None:
        """Back to the prior: a new visitor at a kiosk should not be heard as the last one's voice."""
        c = self.config
        self._weight = c.prior_frames
        self._mean = np.asarray(c.prior_mean, dtype=np.float64)
        self._square = self._mean**2 + np.asarray(c.prior_var, dtype=np.float64)
        # The prior histogram is one bin at the prior median, as heavy as prior_frames voiced frames.
        self._f0_weight = c.prior_frames
        self._f0_hist = np.zeros(len(self._edges) - 1)
        self._f0_hist[self._bins(np.log2([c.prior_f0_hz / PITCH_REFERENCE_HZ]))] = 1.0

    def _bins(self, log_f0: np.ndarray) -> np.ndarray:
        """The histogram bin of each log2(F0 / 150 Hz), values outside the range in the end bins."""
        return np.clip(np.searchsorted(self._edges, log_f0, side="right") - 1, 0, len(self._edges) - 2)

    @property
    def frames(self) -> float:
        """Frames the statistics stand for (prior included), at most horizon_frames."""
        return self._weight

    def observe(self, frames: np.ndarray) -> None:
        """Count raw frames (n, n_features), the same frame never twice: running average until the
        horizon, then each new frame weighs 1/horizon_frames (an exponential forgetting)."""
        if not len(frames):
            return
        n_mfcc = self.features.n_mfcc
        voicing = frames[:, n_mfcc] >= VOICING_THRESHOLD if self.features.pitch else None
        cepstra = frames[voicing if self.config.voiced_only else slice(None), :n_mfcc].astype(np.float64)
        if len(cepstra):
            total = self._weight + len(cepstra)
            self._mean = (self._weight * self._mean + cepstra.sum(axis=0)) / total
            self._square = (self._weight * self._square + (cepstra**2).sum(axis=0)) / total
            self._weight = min(total, self.config.horizon_frames)
        if self.config.pitch:
            voiced = frames[voicing, n_mfcc + 1]
            if len(voiced):
                counts = np.bincount(self._bins(voiced), minlength=len(self._f0_hist))
                total_f0 = self._f0_weight + len(voiced)
                self._f0_hist = (self._f0_weight * self._f0_hist + counts) / total_f0
                self._f0_weight = min(total_f0, self.config.horizon_frames)

    def median_log_f0(self) -> float:
        """log2(median F0 / 150 Hz) of the histogram, interpolated within the median's bin."""
        cumulative = np.cumsum(self._f0_hist)
        i = int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))
        below = cumulative[i - 1] if i else 0.0
        inside = (0.5 * cumulative[-1] - below) / max(self._f0_hist[i], 1e-12)
        return float(self._edges[i] + inside * F0_BIN_OCTAVES)

    def reference(self) -> SpeakerReference:
        var = np.maximum(self._square - self._mean**2, 1e-6)
        return SpeakerReference(self._mean.astype(np.float32), np.sqrt(var).astype(np.float32),
                                self.median_log_f0() if self.config.pitch else 0.0)

    def summary(self) -> dict[str, float]:
        """For the device's state: how much speech the statistics stand for and the F0 it centres on."""
        summary = {"frames": round(self._weight, 1), "seconds": round(self._weight * self.features.frame_seconds, 1)}
        if self.config.pitch:
            summary["median_f0_hz"] = round(PITCH_REFERENCE_HZ * 2 ** self.median_log_f0(), 1)
        return summary

    def state(self) -> dict[str, Any]:
        """Everything needed to carry on after a restart (JSON-able)."""
        return {"weight": self._weight, "mean": self._mean.tolist(), "square": self._square.tolist(),
                "f0_weight": self._f0_weight, "f0_hist": self._f0_hist.tolist()}

    def restore(self, state: object) -> None:
        """Carry on from `state()` (as read back from JSON); a state that does not fit this model is
        a ConfigError (the caller starts from the prior instead)."""
        if not isinstance(state, dict):
            raise ConfigError("adaptation state is malformed: not a JSON object")
        try:
            weight, f0_weight = float(state["weight"]), float(state["f0_weight"])
            mean = np.asarray(state["mean"], dtype=np.float64)
            square = np.asarray(state["square"], dtype=np.float64)
            hist = np.asarray(state["f0_hist"], dtype=np.float64)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"adaptation state is malformed: {exc}") from None
        shapes_fit = mean.shape == self._mean.shape == square.shape and hist.shape == self._f0_hist.shape
        values = np.concatenate([mean, square, hist, [weight, f0_weight]])
        if not shapes_fit or not np.all(np.isfinite(values)) or min(weight, f0_weight) <= 0 or hist.min() < 0 \
                or hist.sum() <= 0:
            raise ConfigError("adaptation state does not fit this model")
        self._weight, self._f0_weight = min(weight, self.config.horizon_frames), min(f0_weight,
                                                                                     self.config.horizon_frames)
        self._mean, self._square, self._f0_hist = mean, square, hist / hist.sum()
