"""One training run: corpus- and class-balanced, SpecAugment per epoch, early stopping on held-out speakers.

The loop is written out (one `fit` epoch at a time) because SpecAugment masks are redrawn every
epoch and the stopping criterion is the loss on *speakers* the model has not trained on, evaluated
on the device's own windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edge_ser.errors import ConfigError
from edge_ser_train.augment import spec_augment
from edge_ser_train.examples import ExampleSet
from edge_ser_train.metrics import clip_probabilities, predictions, scores
from edge_ser_train.models import ModelConfig, average_models, build_model
from edge_ser_train.progress import Progress

MONITORS = ("loss", "ua")
SCHEDULES = ("plateau", "cosine")
BALANCES = ("corpus-class", "speaker-class", "speaker-sqrt-class", "class", "none")


@dataclass(frozen=True)
class TrainConfig:
    max_epochs: int = 35
    batch_size: int = 128
    learning_rate: float = 2e-3
    patience: int = 6  # epochs without a better validation loss before stopping
    spec_augment: bool = True
    # per-window loss weights: "corpus-class" gives every corpus, and every class within it, an equal
    # share (one corpus is "class" weighting); "speaker-class" gives every corpus a share in proportion
    # to its training speakers instead, "speaker-sqrt-class" to their square root; "class" balances
    # classes over all corpora pooled
    balance: str = "corpus-class"
    seed: int = 0
    members: int = 1  # models trained with seeds seed, seed+1, ...; shipped as one model averaging them
    mixup: float = 0.0  # Beta(a, a) parameter of mixup between training windows; 0 = off
    monitor: str = "loss"  # early stopping and epoch choice: validation "loss" or clip-level "ua"
    # "plateau": halve the rate and stop early on the validation speakers, keep the best epoch;
    # "cosine": a fixed cosine decay over max_epochs, keep the last epoch (validation only watched)
    schedule: str = "plateau"
    qat_epochs: int = 0  # quantisation-aware fine-tuning after training (edge_ser_train.quantisation_aware)
    qat_learning_rate: float = 1e-4  # its fixed rate
    qat_augment: bool = False  # its epochs with the training recipe's SpecAugment and mixup

    @property
    def regularises_inputs(self) -> bool:
        """Whether an epoch's inputs are made anew (SpecAugment or mixup), not the windows as they are."""
        return self.spec_augment or self.mixup > 0

    def __post_init__(self) -> None:
        if self.qat_epochs < 0:
            raise ConfigError(f"qat_epochs must be >= 0, not {self.qat_epochs}")
        if not self.qat_learning_rate > 0:
            raise ConfigError(f"qat_learning_rate must be > 0, not {self.qat_learning_rate}")
        if self.members < 1:
            raise ConfigError(f"members must be >= 1, not {self.members}")
        if self.monitor not in MONITORS:
            raise ConfigError(f"monitor must be one of {MONITORS}, not {self.monitor!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {SCHEDULES}, not {self.schedule!r}")
        if self.balance not in BALANCES:
            raise ConfigError(f"balance must be one of {BALANCES}, not {self.balance!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_ua: list[float] = field(default_factory=list)  # clip level
    best_epoch: int = 0


def example_weights(y: np.ndarray, corpus: np.ndarray, balance: str,
                    speaker: np.ndarray | None = None) -> np.ndarray | None:
    """Per-window loss weights with mean 1, or None for "none".

    "class": inverse class frequency (RAVDESS neutral is half the size of the others; merging calm
    makes it 1.5x), so UA, not WA, is what the loss rewards. "corpus-class": every corpus gets the
    same share of the total weight, split equally among the classes it has, so that TESS's 1400
    clips of one voice do not outweigh EmoDB's 200 and a corpus without a class (EmoDB has no
    surprise) still counts as much as the others; with one corpus it is "class". "speaker-class":
    a corpus's share is in proportion to its speakers (`speaker`, per window), split among its
    classes the same way: what carries over to a stranger is the variety of voices, and TESS's one
    voice then weighs like one of RAVDESS's twenty actors rather than like all of them.
    "speaker-sqrt-class": in proportion to the square root of its speakers, between the two: a
    corpus's recording set-up (microphone, room, sentences, way of acting) is also something a
    stranger may share, and one that weighs 4 % is barely learnt."""
    if balance == "none":
        return None
    corpus_index = np.unique(corpus, return_inverse=True)[1] if balance != "class" else np.zeros_like(y)
    corpus_index = corpus_index.reshape(-1)
    cells, index, counts = np.unique(np.stack([corpus_index, y], axis=1), axis=0, return_inverse=True,
                                     return_counts=True)
    index = index.reshape(-1)  # NumPy 2.0 returns the inverse of an axis-unique with the input's shape
    classes_in_corpus = np.bincount(cells[:, 0])  # cells present per corpus
    corpus_share = (classes_in_corpus > 0) / np.count_nonzero(classes_in_corpus)
    if balance in ("speaker-class", "speaker-sqrt-class"):
        if speaker is None:
            raise ConfigError(f'balance "{balance}" needs the windows\' speakers')
        speaker = np.asarray(speaker).reshape(-1)
        speakers_in_corpus = np.array([len(np.unique(speaker[corpus_index == c]))
                                       for c in range(len(classes_in_corpus))])
        if balance == "speaker-sqrt-class":
            speakers_in_corpus = np.sqrt(speakers_in_corpus)
        corpus_share = speakers_in_corpus / speakers_in_corpus.sum()
    share = len(y) * corpus_share[cells[:, 0]] / (classes_in_corpus[cells[:, 0]] * counts)  # per cell, per window
    return share[index].astype(np.float32)


class EpochScratch:
    """Two arrays the size of the training windows, kept for the whole run and refilled every epoch.

    Why: an epoch's SpecAugment and mixup make several arrays of hundreds of megabytes. Fresh ones
    are new memory every epoch, which the kernel must zero page by page, and on a virtual machine
    whose host takes back freed memory that cost most of an epoch here (perf: ~80 % of the time in
    clear_page under page faults; first touch ~6 s per 490 MB, reuse 0.1 s). Refilling the same two
    arrays computes the very same numbers."""

    def __init__(self, x: np.ndarray) -> None:
        self.masked = np.empty_like(x)
        self.partner = np.empty_like(x)


def epoch_inputs(x: np.ndarray, targets: np.ndarray, cfg: TrainConfig, rng: np.random.Generator,
                 scratch: EpochScratch | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's training windows and targets as the recipe regularises them: SpecAugment masks
    redrawn, then mixup, if `cfg` asks for them. Shared by training and quantisation-aware fine-tuning,
    so the fine-tuning sees the inputs the model was trained on, not a cleaner distribution. With
    `scratch`, the result lives in its arrays (valid until the next call)."""
    if scratch is None and cfg.regularises_inputs:
        scratch = EpochScratch(x)
    if cfg.spec_augment:
        for i, window in enumerate(x):
            scratch.masked[i] = spec_augment(window, rng)
        x = scratch.masked
    if cfg.mixup > 0:
        x, targets = mixup(x, targets, cfg.mixup, rng, scratch)
    return x, targets


def mixup(x: np.ndarray, targets: np.ndarray, alpha: float, rng: np.random.Generator,
          scratch: EpochScratch | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each window blended with a random other one, and its one-hot target alike (Zhang et al. 2018):
    with a dozen training speakers the model otherwise memorises speakers; blends of two speakers'
    windows smooth the decision boundaries between them. The blend is written into `scratch`
    (`x` may be its `masked` array)."""
    scratch = scratch or EpochScratch(x)
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    lam = np.maximum(lam, 1 - lam)  # the first window dominates, so its weight still applies
    other = rng.permutation(len(x))
    np.take(x, other, axis=0, out=scratch.partner)  # before `x` is overwritten when it is scratch.masked
    scratch.partner *= (1 - lam)[:, None, None]
    np.multiply(x, lam[:, None, None], out=scratch.masked)
    scratch.masked += scratch.partner
    return scratch.masked, lam[:, None] * targets + (1 - lam[:, None]) * targets[other]


def cosine_rate(initial: float, epoch: int, epochs: int) -> float:
    """The learning rate of `epoch` (0-based) in a cosine decay from `initial` towards 0.

    Why a fixed schedule: with two validation speakers the held-out loss and UA jump by ten points
    from one epoch to the next, so early stopping often picks epoch 2-8 of a model that was still
    improving on the other speakers; a fixed decay needs no such choice."""
    return initial * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def _clip_ua(model: Any, data: ExampleSet, labels: tuple[str, ...]) -> tuple[float, float]:
    """(window-level cross-entropy, clip-level UA) of `data`; NaN for both if it has no windows."""
    if len(data.x) == 0:
        return math.nan, math.nan
    probs = model.predict(data.x, batch_size=256, verbose=0)
    loss = float(-np.mean(np.log(np.maximum(probs[np.arange(len(data.y)), data.y], 1e-7))))
    clips = np.unique(data.clip)
    clip_probs = clip_probabilities(probs, data.clip, clips)
    return loss, scores(data.clip_label[clips], predictions(clip_probs), labels)["ua"]


def train_model(train: ExampleSet, val: ExampleSet, labels: tuple[str, ...], model_cfg: ModelConfig,
                cfg: TrainConfig, log: Callable[[str], None] = print,
                progress: Progress | None = None) -> tuple[Any, History]:
    """Train `cfg.members` models (seeds seed, seed+1, ...) and return (their average, the first one's
    history); `progress` advances one unit per epoch (and drops the epochs an early stop skips).
    Why an ensemble: on unseen speakers one seed differs from the next by several points of UA;
    averaging the probabilities of a few small models removes much of that variance, and the average
    is a single int8 graph no larger than the sum of its members."""
    members, histories = [], []
    for m in range(cfg.members):
        if cfg.members > 1:
            log(f"  member {m + 1}/{cfg.members}")
        model, history = _train_member(train, val, labels, model_cfg, cfg, cfg.seed + m, f"member{m}", log,
                                       progress)
        members.append(model)
        histories.append(history)
    if cfg.members == 1:
        return members[0], histories[0]
    ensemble = average_models(members)
    if len(val.x):
        loss, ua = _clip_ua(ensemble, val, labels)
        log(f"  ensemble of {cfg.members}: val loss {loss:.3f}  val clip UA {ua:.3f}")
    return ensemble, histories[0]


def selection_score(val_loss: float, val_ua: float, monitor: str) -> tuple[float, ...]:
    """Higher is better. Why "ua" exists: on two held-out speakers the window cross-entropy often
    bottoms out after 3-5 epochs, when predictions are still timid, and then rises as the model
    grows confident while its clip-level UA keeps improving; stopping on the loss then keeps an
    undertrained model. Ties in UA (steps of ~1 % on ~120 clips) go to the lower loss."""
    return (val_ua, -val_loss) if monitor == "ua" else (-val_loss,)


def _train_member(train: ExampleSet, val: ExampleSet, labels: tuple[str, ...], model_cfg: ModelConfig,
                  cfg: TrainConfig, seed: int, name: str, log: Callable[[str], None],
                  progress: Progress | None) -> tuple[Any, History]:
    """Train one model, keep the weights of the epoch that scored best on the validation speakers."""
    import keras

    model = build_model(train.x.shape[1], train.x.shape[2], len(labels), model_cfg, seed=seed, name=name)
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    targets = np.eye(len(labels), dtype=np.float32)[train.y]
    weights = example_weights(train.y, train.clip_corpus[train.clip], cfg.balance, train.clip_speaker[train.clip])
    rng = np.random.default_rng(seed)
    scratch = EpochScratch(train.x) if cfg.regularises_inputs else None
    history, best, best_weights, since_best = History(), (-np.inf,), model.get_weights(), 0
    for epoch in range(cfg.max_epochs):
        if cfg.schedule == "cosine":
            optimizer.learning_rate.assign(cosine_rate(cfg.learning_rate, epoch, cfg.max_epochs))
        x, y = epoch_inputs(train.x, targets, cfg, rng, scratch)
        fitted = model.fit(x, y, batch_size=cfg.batch_size, epochs=1, sample_weight=weights,
                           shuffle=True, verbose=0)
        val_loss, val_ua = _clip_ua(model, val, labels)
        history.train_loss.append(float(fitted.history["loss"][-1]))
        history.val_loss.append(val_loss)
        history.val_ua.append(val_ua)
        score = selection_score(val_loss, val_ua, cfg.monitor)
        if cfg.schedule == "cosine":  # the last epoch is the model
            best_weights, since_best, history.best_epoch = None, 0, epoch
        elif score > best:
            best, best_weights, since_best, history.best_epoch = score, model.get_weights(), 0, epoch
        else:
            since_best += 1
            if since_best == cfg.patience // 2:  # plateau: a smaller step often finds a better optimum
                optimizer.learning_rate.assign(float(optimizer.learning_rate.numpy()) / 2)
        line = f"  epoch {epoch + 1:3d}/{cfg.max_epochs}  loss {history.train_loss[-1]:.3f}"
        if len(val.x):
            line += f"  val loss {val_loss:.3f}  val clip UA {val_ua:.3f}{'  *' if since_best == 0 else ''}"
        log(line + f"  rate {float(optimizer.learning_rate.numpy()):.2e}")
        if progress is not None:
            progress.advance()
        if since_best >= cfg.patience:
            break
    if progress is not None:
        progress.drop(cfg.max_epochs - len(history.train_loss))
    if best_weights is not None:
        model.set_weights(best_weights)
    return model, history
