"""The feature configuration: every parameter that shapes a window's features.

It is written into each model's manifest at training time and compared at load time, so a model
can never be fed features computed differently from the ones it was trained on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from edge_ser.errors import ConfigError

MEL_SCALES = ("slaney", "htk")
# Per-window ("level", "cmn", "cmvn") or against the running statistics of the speaker
# (features.adaptation): "speaker" (mean) and "speaker-cmvn" (mean and variance) need a model with an
# adaptation prior.
NORMALISATIONS = ("none", "level", "cmn", "cmvn", "speaker", "speaker-cmvn")
SPEAKER_NORMALISATIONS = ("speaker", "speaker-cmvn")
WINDOWS = ("hann", "hamming")
PITCH_COLUMNS = 2  # voicing strength, log2(F0 / PITCH_REFERENCE_HZ)
# How the pitch columns are estimated (see edge_ser.features.pitch): "acf", the autocorrelation of
# each frame's own 32 ms span (models up to 2.0.0), or "spectrum", read from the power spectrum the
# cepstra already computed (several times cheaper; the default for new models).
PITCH_METHODS = ("acf", "spectrum")
LEGACY_PITCH_METHOD = "acf"  # what a manifest without the key was trained with
MAX_PITCH_LAG_FRACTION = 0.6  # longest period searched, as a fraction of the frame span


def refuse_unknown_keys(cls: type, data: Mapping[str, object], what: str) -> None:
    """A manifest block with a key its dataclass lacks is a typo or a newer format: say which."""
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"{what}: {', '.join(unknown)}")


@dataclass(frozen=True)
class FeatureConfig:
    """Every parameter that shapes the features; stored in each model manifest and checked at load."""

    sample_rate: int = 16000
    frame_length: int = 400  # samples under the analysis window (25 ms)
    hop_length: int = 160  # samples between frames (10 ms)
    n_fft: int = 512  # FFT size; also the span of one frame, as in librosa with center=False
    window: str = "hann"  # periodic window of `frame_length` samples
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 8000.0
    mel_scale: str = "slaney"  # "slaney" (librosa default) or "htk"
    n_mfcc: int = 20
    log_floor: float = 1e-10  # power floor before 10*log10: fixed, never relative to the clip
    lifter: int = 0
    # Per analysis window: "none", "level" (mean of c0 only), "cmn" (mean) or "cmvn" (mean+variance);
    # or the speaker's running mean ("speaker") and variance ("speaker-cmvn"), see NORMALISATIONS.
    normalisation: str = "cmvn"
    # Fixed divisor per coefficient, applied after the per-window normalisation; fitted on training
    # data by the converter (empty: none). The model's int8 input has one scale for all coefficients,
    # and after CMN c0 spans ~15x the range of c19, which would leave the small cepstra a few steps.
    coefficient_scale: tuple[float, ...] = ()
    # Append per frame (voicing, log2 F0 / 150 Hz) after the cepstra: the prosody (pitch level and
    # contour) that 20 cepstra of 40 mel bands smooth away, and which separates sad from neutral or
    # happy from angry far better than the spectral envelope does. See pitch_features.
    pitch: bool = False
    pitch_fmin: float = 70.0
    pitch_fmax: float = 500.0
    pitch_method: str = "spectrum"

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate <= 0:
            problems.append("sample_rate must be positive")
        if not 0 < self.frame_length <= self.n_fft:
            problems.append("frame_length must be in 1..n_fft")
        if self.hop_length <= 0:
            problems.append("hop_length must be positive")
        if self.window not in WINDOWS:
            problems.append(f"window must be one of {WINDOWS}")
        if self.mel_scale not in MEL_SCALES:
            problems.append(f"mel_scale must be one of {MEL_SCALES}")
        if self.normalisation not in NORMALISATIONS:
            problems.append(f"normalisation must be one of {NORMALISATIONS}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            problems.append("need 0 <= fmin < fmax <= sample_rate/2")
        if not 0 < self.n_mfcc <= self.n_mels:
            problems.append("n_mfcc must be in 1..n_mels")
        if self.log_floor <= 0:
            problems.append("log_floor must be positive")
        if self.lifter < 0:
            problems.append("lifter must be >= 0")
        if self.coefficient_scale and (len(self.coefficient_scale) != self.n_features
                                       or not all(v > 0 for v in self.coefficient_scale)):
            problems.append("coefficient_scale must be empty or one positive number per feature column")
        if not 0 < self.pitch_fmin < self.pitch_fmax <= self.sample_rate / 4:
            problems.append("need 0 < pitch_fmin < pitch_fmax <= sample_rate/4")
        elif self.pitch and self.sample_rate / self.pitch_fmin > MAX_PITCH_LAG_FRACTION * self._pitch_span:
            span = "n_fft" if self.pitch_method == "acf" else "frame_length"
            problems.append(f"pitch_fmin too low for {span}: its period must overlap itself in a frame")
        if self.pitch_method not in PITCH_METHODS:
            problems.append(f"pitch_method must be one of {PITCH_METHODS}")
        elif self.pitch and self.pitch_method == "spectrum" and self.pitch_fmin > 0 and (
                self.n_fft % 4 or self.sample_rate / self.pitch_fmin > self.n_fft / 2 - 4):
            # It reads every other lag of the n_fft-periodic autocorrelation (pitch.py), which
            # turns back at n_fft/2.
            problems.append('pitch_method "spectrum" needs n_fft divisible by 4 and the period of '
                            "pitch_fmin under n_fft/2 - 4 samples")
        if problems:
            raise ConfigError("invalid feature config: " + "; ".join(problems))

    @property
    def _pitch_span(self) -> int:
        """Samples the pitch estimator sees per frame: the whole span ("acf") or the window."""
        return self.n_fft if self.pitch_method == "acf" else self.frame_length

    @property
    def n_features(self) -> int:
        """Columns per frame: the cepstra, then the pitch columns if enabled."""
        return self.n_mfcc + (PITCH_COLUMNS if self.pitch else 0)

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureConfig:
        refuse_unknown_keys(cls, data, "unknown feature config keys")
        fields = dict(data)
        # Manifests written before pitch_method existed and with pitch columns were trained with
        # the autocorrelation estimator; reading them with today's default would change the
        # features under the model. Without pitch columns the method shapes nothing: the default
        # keeps such a config equal to a fresh one.
        if fields.get("pitch"):
            fields.setdefault("pitch_method", LEGACY_PITCH_METHOD)
        scale = fields.get("coefficient_scale")
        if isinstance(scale, list):  # JSON has no tuples
            fields["coefficient_scale"] = tuple(scale)
        return cls(**fields)  # type: ignore[arg-type]
