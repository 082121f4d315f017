"""`edge-ser predict`: the device's own pipeline run over recordings, one result per file.

A bad file, or a folder without audio files, is reported on stderr and skipped; every good file
is still processed and the exit status (1) tells a script that something failed. Heavy modules
are imported in `main` only, so building the command line stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_ser.model.default import DEFAULT_MODEL


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders (searched recursively); WAV, "
                   "and FLAC/AIFF/OGG with the 'audio' extra (soundfile)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="model .tflite (its .json manifest beside it)")
    p.add_argument("--format", choices=("text", "jsonl"), default="text", help="output format")
    p.add_argument("--timeline", action="store_true", help="also report every analysis window with times")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads")
    p.add_argument("--adapt-across-files", action="store_true",
                   help="for a model that adapts to its speaker: carry the speaker statistics from one file to the "
                        "next (the files are one speaker's recordings, in the order given) instead of starting "
                        "every file from the model's prior")
    p.add_argument("--plot", metavar="PNG", help="draw the recording's timeline to this PNG (one file; needs "
                   "the 'plot' extra, matplotlib)")


def main(args: argparse.Namespace) -> int:
    from edge_ser.app.predict import describe, expand, format_text
    from edge_ser.audio.wavfile import load_audio
    from edge_ser.errors import AudioFileError, ConfigError
    from edge_ser.model.classifier import Classifier
    from edge_ser.recognise.recogniser import Recogniser, analyse

    classifier = Classifier(args.model, num_threads=args.threads)
    recogniser = Recogniser.from_manifest(classifier)  # the gate the model's training windows were cut with
    rate = classifier.manifest.features.sample_rate
    paths, problems = expand(args.paths)
    if args.plot and len(paths) != 1:
        raise ConfigError(f"--plot draws one recording: give one audio file, not {len(paths)}")
    for problem in problems:
        print(f"edge-ser: skipped {problem}", file=sys.stderr)
    failed = len(problems)
    for path in paths:
        try:
            signal = load_audio(path, rate)
        except AudioFileError as exc:
            print(f"edge-ser: skipped {exc}", file=sys.stderr)
            failed += 1
            continue
        if not args.adapt_across_files:
            recogniser.reset_adaptation()  # each file its own speaker: adapt within it only
        clip = analyse(recogniser, signal)
        result = describe(path, clip, classifier.labels, rate, len(signal) / rate, args.timeline)
        if args.plot:
            from edge_ser.monitor.plot import plot_timeline

            plot_timeline(Path(args.plot), signal, rate, clip, classifier.labels, title=path.name)
        print(json.dumps(result) if args.format == "jsonl" else format_text(result), flush=True)
    return 1 if failed else 0
