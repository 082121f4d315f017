"""Command-line options shared by edge-ser-train, edge-ser-convert and build_default, and the
configs they turn into (so every tool spells a setting the same way and means the same thing)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_ser.features.adaptation import AdaptationConfig
from edge_ser.features.config import NORMALISATIONS, PITCH_METHODS, SPEAKER_NORMALISATIONS, FeatureConfig
from edge_ser.recognise.gate import GateConfig
from edge_ser_train.corpora import Utterance, combine, load_source
from edge_ser_train.errors import TrainingError
from edge_ser_train.examples import ExampleConfig
from edge_ser_train.fit import BALANCES, MONITORS, SCHEDULES, TrainConfig
from edge_ser_train.labels import LABEL_SETS, LabelSet, label_set
from edge_ser_train.models import OUTPUT_LAYERS, POOLINGS, ModelConfig
from edge_ser_train.room import RoomAugment

DEFAULT_CACHE = Path("/tmp/edge_ser_cache")


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `minimum`, so `--epochs 0` or `--folds 1` is refused when the
    command line is read, not after minutes of feature building."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def probability(text: str) -> float:
    """An argparse type: a number in [0, 1], refused when the command line is read."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability, not {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, not {value}")
    return value


def add_options(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data", action="append", required=True, metavar="[KIND=]PATH",
                      help="a corpus: ravdess=, crema-d=, tess=, savee=, emodb=, csv=, folders=PATH; "
                           "a bare PATH is read as RAVDESS. Repeat to combine corpora.")
    data.add_argument("--labels", choices=sorted(LABEL_SETS), default="seven",
                      help="label set (seven: calm merged into neutral)")
    data.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="feature cache directory")
    feats = parser.add_argument_group("features and windows")
    feats.add_argument("--n-mfcc", type=int, default=20)
    feats.add_argument("--n-mels", type=int, default=40)
    feats.add_argument("--no-pitch", action="store_true",
                       help="without the voicing and log-F0 columns per frame (the prosody the cepstra smooth "
                            "away; on by default)")
    feats.add_argument("--pitch-method", choices=PITCH_METHODS, default=FeatureConfig.pitch_method,
                       help="how the pitch columns are estimated: spectrum (from the MFCC power spectrum, "
                            "~0.4x the cepstra's cost) or acf (the span's own autocorrelation, as in models "
                            "up to 2.0.0, ~3.6x)")
    feats.add_argument("--normalisation", choices=NORMALISATIONS, default="cmn",
                       help="cepstral normalisation per window (cmn keeps the level dynamics that carry arousal; "
                            "level removes only the mean of c0, keeping the window's spectral shape) or against "
                            "the speaker's running statistics (speaker, speaker-cmvn: needs --adapt)")
    feats.add_argument("--adapt", action="store_true",
                       help="speaker adaptation as on the device: log-F0 relative to the speaker's running median "
                            "F0 (and the cepstra relative to the speaker's running mean with --normalisation "
                            "speaker), each speaker's clips streamed in a random order through the device's code")
    feats.add_argument("--adapt-horizon", type=float, default=60.0, metavar="SECONDS",
                       help="seconds of speech the running statistics average over at most")
    feats.add_argument("--adapt-voiced", action="store_true",
                       help="the speaker's cepstral statistics from voiced frames only (pauses carry the room's "
                            "noise, not the voice)")
    feats.add_argument("--coefficient-scale", choices=("fitted", "none"), default="fitted",
                       help="int8 input: divide each coefficient by its spread in the training windows (constants "
                            "in the manifest; folded into the first convolution), so all use the int8 range alike")
    feats.add_argument("--window-frames", type=at_least(1), default=200, help="frames per window (10 ms each)")
    feats.add_argument("--gate-floor", type=float, default=GateConfig.absolute_floor_db, metavar="DBFS",
                       help="the voice gate's absolute floor the windows are cut with (written into the manifest, "
                            "which `predict` and the daemon start from); -75 keeps very soft speech but cost "
                            "reverberation and babble robustness here (reports/gate_floor.md)")
    feats.add_argument("--train-hop", type=at_least(1), default=20, help="window hop for training examples")
    feats.add_argument("--device-hop", type=at_least(1), default=50, help="window hop on the device / in evaluation")
    aug = parser.add_argument_group("augmentation")
    aug.add_argument("--copies", type=at_least(0), default=2, help="augmented copies per training clip")
    aug.add_argument("--no-wave-augment", action="store_true", help="copies without noise/gain/shift/speed/pitch")
    aug.add_argument("--no-vtlp", action="store_true", help="copies without VTLP")
    aug.add_argument("--room-augment", action="store_true",
                     help="copies also in simulated rooms and microphones: reverberation (RT60 0.2-0.8 s), babble "
                          "of other speakers, noise at 0-20 dB SNR, MEMS/EQ colouration, telephone band, level "
                          "+-20 dB with clipping")
    aug.add_argument("--room-babble", type=probability, metavar="P",
                     help="with --room-augment: the share of copies with other talkers at 5-20 dB SNR "
                          f"(default {RoomAugment.babble_probability})")
    aug.add_argument("--room-reverb", type=probability, metavar="P",
                     help="with --room-augment: the share of copies in a reverberant room "
                          f"(default {RoomAugment.reverb_probability})")
    aug.add_argument("--vtlp", type=float, nargs=2, default=(0.9, 1.1), metavar=("LOW", "HIGH"),
                     help="range of the per-copy VTLP warp factor")
    aug.add_argument("--no-spec-augment", action="store_true")
    model = parser.add_argument_group("model and training")
    model.add_argument("--width", type=int, default=48)
    model.add_argument("--depth", type=int, default=4)
    model.add_argument("--kernel", type=int, default=5)
    model.add_argument("--dropout", type=float, default=0.3)
    model.add_argument("--attention", action="store_true", help="multiscale area attention before pooling")
    model.add_argument("--output-layer", choices=OUTPUT_LAYERS, default="int8",
                       help="after conversion, the last dense layer and softmax in int8 like the rest, or in float32 "
                            "(int8 logits tie between the two best classes on a few %% of windows; float costs "
                            "~2 KB and a few hundred multiply-adds)")
    model.add_argument("--pooling", choices=POOLINGS, default="mean",
                       help="over time: mean (global average) or stats (mean and mean absolute deviation)")
    model.add_argument("--epochs", type=at_least(1), default=30,
                       help="epochs of the cosine schedule; the maximum with --schedule plateau")
    model.add_argument("--batch-size", type=at_least(1), default=128)
    model.add_argument("--learning-rate", type=float, default=2e-3)
    model.add_argument("--patience", type=int, default=6)
    model.add_argument("--monitor", choices=MONITORS, default="loss",
                       help="what early stopping watches on the held-out speakers: window loss or clip UA")
    model.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                       help="plateau: halve the rate and stop early on the held-out speakers; cosine: fixed "
                            "cosine decay over --epochs, the last epoch is the model")
    model.add_argument("--val-speakers", type=at_least(0), default=0,
                       help="training speakers held out per fold for early stopping/validation (0: train on "
                            "all; needs --schedule cosine)")
    model.add_argument("--balance", choices=BALANCES, default="corpus-class",
                       help="loss weights per window: every corpus and every class within it an equal share "
                            "(corpus-class; one corpus: the same as class), every corpus a share in proportion to "
                            "its speakers, split equally over its classes (speaker-class) or to their square root "
                            "(speaker-sqrt-class), classes over all "
                            "corpora pooled (class), or none")
    model.add_argument("--seed", type=int, default=0)
    model.add_argument("--mixup", type=float, default=0.2, help="mixup Beta(a, a) parameter; 0 = off")
    model.add_argument("--members", type=at_least(1), default=2,
                       help="train this many models (seeds seed, seed+1, ...) and ship their average as one "
                            "int8 graph (1: a single model, half the size and inference time)")
    model.add_argument("--qat-epochs", type=at_least(0), default=0, metavar="N",
                       help="after training, N epochs of quantisation-aware fine-tuning (BatchNorm folded, "
                            "convolution weights on the int8 grid) so the int8 model decides as the float one "
                            "does; needs --members 1, no --attention and --pooling mean")
    model.add_argument("--qat-rate", type=float, default=TrainConfig.qat_learning_rate, metavar="RATE",
                       help="the fine-tuning's fixed learning rate")
    model.add_argument("--qat-augment", action="store_true",
                       help="fine-tune on inputs regularised as in training (SpecAugment, mixup) instead of "
                            "the plain training windows")


@dataclass(frozen=True)
class Settings:
    utterances: list[Utterance]
    labels: LabelSet
    examples: ExampleConfig
    model: ModelConfig
    train: TrainConfig
    cache: Path
    fit_scale: bool  # fit FeatureConfig.coefficient_scale on the training windows
    val_speakers: int  # training speakers held out for early stopping / validation


def settings_from(args: argparse.Namespace) -> Settings:
    """The configs the options describe, and the corpora loaded; a contradiction or a source
    without clips is a TrainingError (or a ConfigError from the config it would make)."""
    features = FeatureConfig(n_mfcc=args.n_mfcc, n_mels=args.n_mels, normalisation=args.normalisation,
                             pitch=not args.no_pitch, pitch_method=args.pitch_method)
    if args.normalisation in SPEAKER_NORMALISATIONS and not args.adapt:
        raise TrainingError(f"--normalisation {args.normalisation} normalises against the speaker's statistics: "
                            "add --adapt")
    if args.adapt and not features.pitch and args.normalisation not in SPEAKER_NORMALISATIONS:
        raise TrainingError("--adapt adapts the pitch columns or, with --normalisation speaker, the cepstra: "
                            "without either it would change nothing")
    shares = {"babble_probability": args.room_babble, "reverb_probability": args.room_reverb}
    room_shares = {name: share for name, share in shares.items() if share is not None}
    if room_shares and not args.room_augment:
        raise TrainingError("--room-babble and --room-reverb set how often --room-augment uses an effect: "
                            "add --room-augment")
    if not args.gate_floor < 0:
        raise TrainingError(f"--gate-floor {args.gate_floor:g} dBFS would let no frame through: full scale is 0 dBFS")
    if args.adapt_voiced and not (args.adapt and features.pitch):
        raise TrainingError("--adapt-voiced tells voiced frames by the pitch columns: it needs --adapt and pitch")
    horizon = args.adapt_horizon / features.frame_seconds
    adaptation = AdaptationConfig(pitch=features.pitch, horizon_frames=horizon, voiced_only=args.adapt_voiced,
                                  prior_frames=min(AdaptationConfig.prior_frames, horizon)) if args.adapt else None
    examples = ExampleConfig(features, window_frames=args.window_frames, train_hop_frames=args.train_hop,
                             device_hop_frames=args.device_hop, augmented_copies=args.copies,
                             wave_augment=not args.no_wave_augment,
                             vtlp=None if args.no_vtlp else tuple(args.vtlp), seed=args.seed,
                             room_augment=args.room_augment, adaptation=adaptation,
                             room=RoomAugment(**room_shares),
                             gate=GateConfig(absolute_floor_db=args.gate_floor))
    model = ModelConfig(width=args.width, depth=args.depth, kernel=args.kernel, dropout=args.dropout,
                        attention=args.attention, pooling=args.pooling, output_layer=args.output_layer)
    if not args.qat_epochs and (args.qat_rate != TrainConfig.qat_learning_rate or args.qat_augment):
        raise TrainingError("--qat-rate and --qat-augment set how --qat-epochs fine-tunes: add --qat-epochs N")
    if not args.qat_rate > 0:
        raise TrainingError(f"--qat-rate must be > 0, not {args.qat_rate:g}")
    train = TrainConfig(max_epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                        patience=args.patience, spec_augment=not args.no_spec_augment,
                        balance=args.balance, seed=args.seed,
                        members=args.members, mixup=args.mixup, monitor=args.monitor,
                        schedule=args.schedule, qat_epochs=args.qat_epochs,
                        qat_learning_rate=args.qat_rate, qat_augment=args.qat_augment)
    if args.qat_epochs and (args.members > 1 or args.attention or args.pooling != "mean"):
        raise TrainingError("--qat-epochs fine-tunes the plain Conv1D chain: use it with --members 1, without "
                            "--attention and with --pooling mean")
    if args.val_speakers == 0 and args.schedule != "cosine":
        raise TrainingError("--val-speakers 0 leaves nothing to stop early on: use it with --schedule cosine")
    utterances = combine(load_source(spec) for spec in args.data)
    return Settings(utterances, label_set(args.labels), examples, model, train, args.cache,
                    args.coefficient_scale == "fitted", args.val_speakers)
