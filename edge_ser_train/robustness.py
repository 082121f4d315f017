"""How much of the accuracy survives a real room: test clips re-scored under fixed acoustic conditions.

Cross-validation scores studio recordings; a kiosk hears quieter, noisier, reverberant, band-limited
speech. For each condition below every clip is changed on the waveform and then cut into windows by
the device's own chain (resampler output -> front end, gate, segmenter at the device hop, exactly
like the clean evaluation windows), and the fold's int8 model is scored on its test speakers at clip
level. The table reports UA per condition and its drop against the clean clips.

Every condition is reproducible: the noise of a clip is seeded by (seed, clip, condition), and its
babble — made of other speakers of its own fold group, never its own voice — is the same at every
SNR, so the SNR sweep changes the level of the interference and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import Pool
from typing import Any

import numpy as np

from edge_ser.recognise.segmenter import WindowSpec
from edge_ser_train.audio import read_corpus_audio
from edge_ser_train.augment import add_noise, mix_at_snr
from edge_ser_train.corpora import Utterance
from edge_ser_train.examples import (
    ExampleConfig,
    ExampleSet,
    Windows,
    assemble,
    babble_pools,
    clip_windows,
    kept_clips,
    read_pool,
)
from edge_ser_train.export import int8_predict
from edge_ser_train.labels import LabelSet
from edge_ser_train.metrics import clip_probabilities, predictions, scores
from edge_ser_train.room import babble, change_level, reverberate, synthetic_rir, telephone_band
from edge_ser_train.scaling import apply_coefficient_scale

KINDS = ("clean", "level", "white", "babble", "reverb", "telephone")


@dataclass(frozen=True)
class Condition:
    """One acoustic condition: `kind` is clean, level (dB), white or babble (SNR dB), reverb (RT60 s)
    or telephone."""

    name: str
    kind: str
    value: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"condition {self.name!r}: kind must be one of {KINDS}, not {self.kind!r}")

    def apply(self, signal: np.ndarray, sample_rate: int, rng: np.random.Generator,
              talk: np.ndarray | None) -> np.ndarray | None:
        """`signal` under this condition; None for babble when the clip has no other speaker to hear."""
        if self.kind == "level":
            return change_level(signal, self.value)
        if self.kind == "white":
            return add_noise(signal, self.value, rng, "white")
        if self.kind == "babble":
            return None if talk is None else mix_at_snr(signal, talk, self.value)
        if self.kind == "reverb":
            return reverberate(signal, synthetic_rir(self.value, sample_rate, rng))
        if self.kind == "telephone":
            return telephone_band(signal, sample_rate)
        return signal


CONDITIONS = (
    Condition("clean", "clean"),
    Condition("level -20 dB", "level", -20.0),
    Condition("white 20 dB", "white", 20.0),
    Condition("white 10 dB", "white", 10.0),
    Condition("white 5 dB", "white", 5.0),
    Condition("babble 20 dB", "babble", 20.0),
    Condition("babble 10 dB", "babble", 10.0),
    Condition("babble 5 dB", "babble", 5.0),
    Condition("RT60 0.3 s", "reverb", 0.3),
    Condition("RT60 0.6 s", "reverb", 0.6),
    Condition("telephone", "telephone"),
)


def _clip_conditions(args: tuple[int, Utterance, ExampleConfig, list[tuple[str, str]],
                                 tuple[Condition, ...]]) -> list[Windows | None]:
    """Device-hop windows of one clip under every condition (None: the condition cannot be made)."""
    index, utterance, cfg, pool, conditions = args
    rate = cfg.features.sample_rate
    signal = read_corpus_audio(utterance.path, rate)
    spec = WindowSpec(cfg.window_frames, cfg.device_hop_frames)
    talk = None
    if any(c.kind == "babble" for c in conditions):
        talk = babble(len(signal), read_pool(pool, rate), utterance.speaker, np.random.default_rng([cfg.seed, index]))
    out: list[Windows | None] = []
    for number, condition in enumerate(conditions):
        audio = condition.apply(signal, rate, np.random.default_rng([cfg.seed, index, number]), talk)
        out.append(None if audio is None else clip_windows(audio, cfg.cut_features, spec, cfg.gate))
    return out


@dataclass
class ConditionSet:
    """One condition's evaluation windows, and which clips it could be made for (babble needs another
    speaker); a made clip without windows is one the gate heard no speech in."""

    windows: ExampleSet
    made: np.ndarray  # (clips,) bool


def condition_examples(utterances: Sequence[Utterance], labels: LabelSet, cfg: ExampleConfig,
                       groups: Sequence[Sequence[str]], conditions: Sequence[Condition] = CONDITIONS,
                       workers: int | None = None) -> dict[str, ConditionSet]:
    """Per condition name, the evaluation windows (device hop) of every clip under that condition;
    clip indices match `build_examples`' evaluation set. Babble is drawn within `groups`."""
    kept, clip_label, clip_speaker = kept_clips(utterances, labels)
    pools = babble_pools(kept, groups, cfg.seed)
    jobs = [(i, u, cfg, pool, tuple(conditions)) for i, (u, pool) in enumerate(zip(kept, pools, strict=True))]
    with Pool(workers or min(2, os.cpu_count() or 1)) as workers_pool:
        results = workers_pool.map(_clip_conditions, jobs, chunksize=4)
    sets = {}
    for number, condition in enumerate(conditions):
        made = np.array([r[number] is not None for r in results], dtype=bool)
        windows = [r[number] for r in results if r[number] is not None]
        sets[condition.name] = ConditionSet(
            assemble(windows, clip_label, np.flatnonzero(made).tolist(), [0] * len(windows), clip_speaker, cfg), made)
    return sets


def robustness_scores(tflite: bytes, sets: dict[str, ConditionSet], test_speakers: Sequence[str],
                      scale: tuple[float, ...], labels: tuple[str, ...]) -> dict[str, float | None]:
    """Clip-level UA of the int8 model on the test speakers under each condition (inputs divided by
    the fold's coefficient scale, as the device does). A clip the gate finds no speech in counts as
    an error — a quiet room must not look better by losing its hard clips; None when the condition
    could be made for none of these speakers' clips."""
    out: dict[str, float | None] = {}
    for name, condition in sets.items():
        data = condition.windows
        clips = np.flatnonzero(condition.made & np.isin(data.clip_speaker, list(test_speakers)))
        if len(clips) == 0:
            out[name] = None
            continue
        test = data.select_speakers(test_speakers)
        if scale:
            test = apply_coefficient_scale(test, scale)
        probs = int8_predict(tflite, test.x) if len(test.x) else np.zeros((0, len(labels)), np.float32)
        predicted = predictions(clip_probabilities(probs, test.clip, clips))
        out[name] = scores(data.clip_label[clips], predicted, labels)["ua"]
    return out


def robustness_table(folds: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per condition: mean and std over folds of clip UA, and the mean drop against clean (points
    of 1.0, positive = worse), from each fold's `robustness` entry."""
    names = list(folds[0]["robustness"])
    table: dict[str, dict[str, float | None]] = {}
    for name in names:
        pairs = [(f["robustness"]["clean"], f["robustness"][name]) for f in folds if f["robustness"][name] is not None]
        if not pairs:
            table[name] = {"ua": None, "std": None, "drop": None}
            continue
        clean, ua = np.array(pairs, dtype=float).T
        table[name] = {"ua": float(ua.mean()), "std": float(ua.std()), "drop": float((clean - ua).mean())}
    return table


def robustness_markdown(table: dict[str, dict[str, float | None]]) -> str:
    """The table as markdown: UA (mean ± std over folds) and the drop against clean, in points."""
    lines = ["| condition | int8 clip UA | drop vs clean |", "|---|---|---|"]
    for name, row in table.items():
        if row["ua"] is None or row["std"] is None or row["drop"] is None:
            lines.append(f"| {name} | n/a | n/a |")
        else:
            lines.append(f"| {name} | {100 * row['ua']:.1f} ± {100 * row['std']:.1f} | {100 * row['drop']:+.1f} |")
    return "\n".join(lines) + "\n"
