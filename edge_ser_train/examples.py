"""Training and evaluation examples cut by edge_ser's own pipeline (gate, windows, MFCC, normalisation).

Each clip yields the windows the device would classify (`speech_windows`); augmented copies are
made on the waveform (and VTLP on the power spectrum) before that same code runs. Building the
examples for a corpus takes a minute, so results are cached on disk keyed by everything that
shapes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from edge_ser.features.adaptation import AdaptationConfig
from edge_ser.features.config import FeatureConfig
from edge_ser.recognise.gate import GateConfig
from edge_ser.recognise.recogniser import speech_windows
from edge_ser.recognise.segmenter import WindowSpec
from edge_ser_train.audio import read_corpus_audio
from edge_ser_train.augment import WaveAugment
from edge_ser_train.code_digest import code_digest
from edge_ser_train.corpora import Utterance, corpus_of
from edge_ser_train.labels import LabelSet
from edge_ser_train.progress import Progress
from edge_ser_train.room import RoomAugment
from edge_ser_train.spectral import vtlp


@dataclass(frozen=True)
class ExampleConfig:
    """Everything that decides which windows a clip turns into."""

    features: FeatureConfig
    window_frames: int = 200
    train_hop_frames: int = 20  # denser than the device hop: more (correlated) training windows
    device_hop_frames: int = 50  # the hop written into the manifest; evaluation uses it
    augmented_copies: int = 0  # perturbed copies per clip in addition to the original
    wave_augment: bool = True  # noise, gain, shift, speed, pitch on the copies
    vtlp: tuple[float, float] | None = (0.9, 1.1)  # per-copy warp factor range; None = no VTLP
    room_augment: bool = False  # rooms and microphones on the copies: reverb, babble, noise, EQ, level (room.py)
    room: RoomAugment = field(default_factory=RoomAugment)  # which of them, how often (with room_augment)
    seed: int = 0
    gate: GateConfig = field(default_factory=GateConfig)  # written into the manifest for `predict`
    # Speaker adaptation (edge_ser.features.adaptation) without its prior, which is fitted per split:
    # the windows are then cut raw and normalised later by streaming each speaker's clips through
    # the device's adapter (edge_ser_train.adaptation). None: normalised per window, here.
    adaptation: AdaptationConfig | None = None

    @property
    def cut_features(self) -> FeatureConfig:
        """The features the windows are cut with: raw when adaptation normalises them later."""
        return self.features if self.adaptation is None else replace(self.features, normalisation="none")

    def key(self, utterances: Sequence[Utterance], babble_groups: Sequence[Sequence[str]] | None = None) -> str:
        """Cache key: the config, the files, the speaker groups babble is drawn within, and the source
        of the code that turns them into windows (a change to the front end or the augmentations
        must not reuse stale features)."""
        blob = json.dumps({"cfg": asdict(self), "files": [str(u.path) for u in utterances],
                           "babble": babble_groups, "code": code_digest(__name__)}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class ExampleSet:
    """Windows with their labels and clips; per-clip arrays are indexed by `clip`."""

    x: np.ndarray  # (windows, frames, coefficients) float32
    y: np.ndarray  # (windows,) label index
    clip: np.ndarray  # (windows,) index into the clip arrays
    copy: np.ndarray  # (windows,) 0 = original audio, k > 0 = k-th augmented copy
    clip_label: np.ndarray  # (clips,)
    clip_speaker: np.ndarray  # (clips,) str
    # (windows,) first frame of each window in its clip (negative: padded at the clip's start), so
    # speaker adaptation counts every frame once, as the device does; None where nothing adapts.
    start: np.ndarray | None = None
    # The speakers this set was selected for: their clips count in the scores even where the gate
    # cut no window (a miss, not a missing row). None: the clips that have windows.
    speakers: tuple[str, ...] | None = None

    def fingerprint(self) -> str:
        """sha256 of the windows' float32 values and labels, in order.

        Why: training is deterministic on one machine, but another CPU or library build can take
        other floating-point paths and change the features in their last digits, and then the model
        trained on them. Recorded with a model, this tells a rebuild within minutes, before training,
        whether it sees the very windows the model was trained on."""
        digest = hashlib.sha256(np.ascontiguousarray(self.x, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.y, dtype=np.int64).tobytes())
        return digest.hexdigest()

    def clips(self) -> np.ndarray:
        """The clip ids this set is scored on: every clip of its speakers, windows or not."""
        if self.speakers is None:
            return np.unique(self.clip)
        return np.flatnonzero(np.isin(self.clip_speaker, list(self.speakers)))

    @property
    def clip_corpus(self) -> np.ndarray:
        """(clips,) the corpus of each clip, from its namespaced speaker ("emodb:03" -> "emodb")."""
        return np.array([corpus_of(str(s)) for s in self.clip_speaker])

    def select_corpus(self, corpus: str) -> ExampleSet:
        """The windows of this corpus's clips (clip indices stay global)."""
        return self.select_speakers([s for s in set(self.clip_speaker.tolist()) if corpus_of(s) == corpus])

    def select_speakers(self, speakers: Sequence[str], copies: bool = True) -> ExampleSet:
        """The windows of these speakers' clips (clip indices stay global)."""
        if self.speakers is not None:  # a subset of a subset: never more speakers than it had
            speakers = [sp for sp in speakers if sp in self.speakers]
        keep = np.isin(self.clip_speaker[self.clip], list(speakers))
        if not copies:
            keep &= self.copy == 0
        return replace(self, x=self.x[keep], y=self.y[keep], clip=self.clip[keep], copy=self.copy[keep],
                       start=None if self.start is None else self.start[keep], speakers=tuple(speakers))


Windows = tuple[np.ndarray, np.ndarray]  # (n, frames, coefficients) float32, (n,) first frames


def clip_windows(signal: np.ndarray, cfg: FeatureConfig, spec: WindowSpec, gate: GateConfig,
                 vtlp_factor: float = 1.0) -> Windows:
    """The windows of one clip as the device would cut them and their first frames, with the power
    spectrum warped by `vtlp_factor` through the front end's spectral hook (the gate decides on
    frame energy, which the warp leaves alone, so the same windows are cut)."""
    transform = None if vtlp_factor == 1.0 else vtlp(vtlp_factor, cfg.sample_rate)
    windows = speech_windows(signal, cfg, gate, spec, transform)
    if not windows:
        return np.zeros((0, spec.window_frames, cfg.n_features), dtype=np.float32), np.zeros(0, np.int32)
    return (np.stack([w.features for w in windows]),
            np.array([w.start // cfg.hop_length for w in windows], dtype=np.int32))


BABBLE_POOL = 6  # clips of other speakers read per clip for babble: up to six talkers at once


def babble_pools(utterances: Sequence[Utterance], groups: Sequence[Sequence[str]] | None, seed: int,
                 size: int = BABBLE_POOL) -> list[list[tuple[str, str]]]:
    """Per clip, `size` (speaker, path) pairs of other speakers' clips to make babble from (none when
    its group has no other speaker), distinct speakers first, drawn reproducibly from `seed`.

    Why groups: babble must never carry a voice the model is tested on. Cross-validation passes its
    test-speaker groups: a clip's babble then comes from the other speakers of its own group, who
    are training speakers whenever this clip is (and test speakers when it is tested). None puts
    every speaker in one group."""
    group_of = {sp: i for i, group in enumerate(groups) for sp in group} if groups else {}
    clips: dict[int, dict[str, list[Utterance]]] = {}
    for u in utterances:
        clips.setdefault(group_of.get(u.speaker, -1), {}).setdefault(u.speaker, []).append(u)
    pools = []
    for index, utterance in enumerate(utterances):
        rng = np.random.default_rng([seed, index, 7])
        mine = clips[group_of.get(utterance.speaker, -1)]
        speakers = [str(sp) for sp in rng.permutation(sorted(sp for sp in mine if sp != utterance.speaker))]
        drawn = [mine[speakers[i % len(speakers)]] for i in range(size)] if speakers else []
        pools.append([(c[0].speaker, str(c[int(rng.integers(len(c)))].path)) for c in drawn])
    return pools


def read_pool(pool: Sequence[tuple[str, str]], sample_rate: int) -> list[tuple[str, np.ndarray]]:
    """The (speaker, signal) pairs `RoomAugment` and the robustness conditions make babble from."""
    return [(speaker, read_corpus_audio(path, sample_rate)) for speaker, path in pool]


def _one_clip(args: tuple[int, Utterance, ExampleConfig, list[tuple[str, str]]]) -> tuple[list[Windows], Windows]:
    """Windows of every copy of one clip (training hop) and of the original at the device hop."""
    index, utterance, cfg, pool = args
    signal = read_corpus_audio(utterance.path, cfg.features.sample_rate)
    train_spec = WindowSpec(cfg.window_frames, cfg.train_hop_frames)
    features = cfg.cut_features
    copies = [clip_windows(signal, features, train_spec, cfg.gate)]
    augment = WaveAugment()
    talkers = read_pool(pool, cfg.features.sample_rate) if cfg.room_augment and cfg.augmented_copies else []
    for k in range(1, cfg.augmented_copies + 1):
        rng = np.random.default_rng([cfg.seed, index, k])
        audio = augment(signal, cfg.features.sample_rate, rng) if cfg.wave_augment else signal
        factor = float(rng.uniform(*cfg.vtlp)) if cfg.vtlp else 1.0
        if cfg.room_augment:
            audio = cfg.room(audio, cfg.features.sample_rate, rng, utterance.speaker, talkers)
        copies.append(clip_windows(audio, features, train_spec, cfg.gate, factor))
    device = clip_windows(signal, features, WindowSpec(cfg.window_frames, cfg.device_hop_frames), cfg.gate)
    return copies, device


def kept_clips(utterances: Sequence[Utterance], labels: LabelSet) -> tuple[list[Utterance], np.ndarray, np.ndarray]:
    """(the utterances whose label is in `labels`, their label indices, their speakers): the clips an
    example set numbers, so every set built from the same utterances agrees on clip indices."""
    kept = [u for u in utterances if labels.index(u.label) is not None]
    return (kept, np.array([labels.index(u.label) for u in kept], dtype=np.int32),
            np.array([u.speaker for u in kept]))


def assemble(parts: Sequence[Windows], labels: np.ndarray, clip_ids: Sequence[int], copy_ids: Sequence[int],
             speakers: np.ndarray, cfg: ExampleConfig) -> ExampleSet:
    """One ExampleSet from per-(clip, copy) windows: `parts[i]` belongs to clip `clip_ids[i]`, copy
    `copy_ids[i]`; `labels`/`speakers` are per clip (from `kept_clips`)."""
    counts = [len(x) for x, _ in parts]
    x = (np.concatenate([x for x, _ in parts]) if parts else
         np.zeros((0, cfg.window_frames, cfg.features.n_features), np.float32))
    start = np.concatenate([s for _, s in parts]) if parts else np.zeros(0, np.int32)
    clip = np.repeat(np.array(clip_ids, dtype=np.int32), counts)
    return ExampleSet(x.astype(np.float32), labels[clip], clip, np.repeat(np.array(copy_ids, np.int16), counts),
                      labels, speakers, start)


def build_examples(utterances: Sequence[Utterance], labels: LabelSet, cfg: ExampleConfig,
                   cache_dir: Path | None = None, workers: int | None = None,
                   babble_groups: Sequence[Sequence[str]] | None = None,
                   progress: bool = False) -> tuple[ExampleSet, ExampleSet]:
    """(training windows incl. augmented copies, evaluation windows at the device hop); `progress`
    shows a bar with an ETA over the clips on stdout (edge_ser_train.progress).

    Utterances whose label is outside `labels` are dropped here, so clip indices count kept clips.
    With `cfg.room_augment`, babble is drawn within `babble_groups` (see `babble_pools`).
    """
    kept, clip_label, clip_speaker = kept_clips(utterances, labels)
    groups = [list(g) for g in babble_groups] if cfg.room_augment and babble_groups else None
    cache = Path(cache_dir) / f"examples-{cfg.key(kept, groups)}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        data = np.load(cache)
        # Window labels are derived here, not cached: the cache is shared by every label set.
        return (ExampleSet(data["tx"], clip_label[data["tclip"]], data["tclip"], data["tcopy"], clip_label,
                           clip_speaker, data["tstart"]),
                ExampleSet(data["ex"], clip_label[data["eclip"]], data["eclip"], data["ecopy"], clip_label,
                           clip_speaker, data["estart"]))
    pools = babble_pools(kept, groups, cfg.seed) if cfg.room_augment else [[] for _ in kept]
    jobs = [(i, u, cfg, pool) for i, (u, pool) in enumerate(zip(kept, pools, strict=True))]
    with (Pool(workers or min(2, os.cpu_count() or 1)) as pool,
          Progress(len(jobs), "features", "clips", show=progress) as bar):
        results = list(bar.track(pool.imap(_one_clip, jobs, chunksize=8)))
    train_parts, train_clips, train_copies = [], [], []
    for i, (copies, _) in enumerate(results):
        for k, windows in enumerate(copies):
            train_parts.append(windows)
            train_clips.append(i)
            train_copies.append(k)
    train = assemble(train_parts, clip_label, train_clips, train_copies, clip_speaker, cfg)
    evaluation = assemble([d for _, d in results], clip_label, list(range(len(kept))), [0] * len(kept),
                          clip_speaker, cfg)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, tx=train.x, tclip=train.clip, tcopy=train.copy, tstart=train.start,
                 ex=evaluation.x, eclip=evaluation.clip, ecopy=evaluation.copy, estart=evaluation.start)
    return train, evaluation
