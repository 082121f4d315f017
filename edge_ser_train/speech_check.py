"""Measure the speech-likeness check (edge_ser.recognise.speech_likeness) the way a device meets it.

    python -m edge_ser_train.speech_check --data ravdess=../shared/data/ravdess \\
        --data tess=../shared/data/tess --data emodb=../shared/data/emodb

Every clip runs through the deployed chain (`Recogniser.from_manifest` on the model, the manifest's
gate, one stream per clip); the figure that matters is the fraction of *utterances* that still come
out with an emotion label, per corpus: the check must not cost real speech its events. Beside it,
every generated non-speech kind (edge_ser_testing.nonspeech, several seeds) must come out
`uncertain` or not at all.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from edge_ser.audio.wavfile import load_audio
from edge_ser.model.classifier import Classifier
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.recognise.recogniser import Recogniser, analyse
from edge_ser_testing.nonspeech import NON_SPEECH
from edge_ser_train.console import run_tool
from edge_ser_train.corpora import combine, load_source


def measure(model: Path, data: list[str], seeds: int = 5) -> dict[str, Any]:
    """{corpus: (utterances, speech-like utterances, clips)}, {non-speech kind: speech-like utterances}."""
    utterances = combine(load_source(spec) for spec in data)
    classifier = Classifier(model)
    recogniser = Recogniser.from_manifest(classifier)
    rate = classifier.manifest.features.sample_rate
    speech: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for u in utterances:
        clip = analyse(recogniser, load_audio(u.path, rate))
        counts = speech[u.corpus]
        counts[0] += len(clip.utterances)
        counts[1] += sum(x.speech_like for x in clip.utterances)
        counts[2] += 1
    nonspeech = {}
    for kind, make in NON_SPEECH.items():
        clips = [analyse(recogniser, make(seed)) for seed in range(seeds)]
        nonspeech[kind] = {"utterances": sum(len(c.utterances) for c in clips),
                           "speech_like": sum(x.speech_like for c in clips for x in c.utterances)}
    return {"model": f"{classifier.manifest.name} {classifier.manifest.version}",
            "speech": {corpus: {"clips": c[2], "utterances": c[0], "speech_like": c[1],
                                "fraction": c[1] / max(c[0], 1)} for corpus, c in speech.items()},
            "nonspeech": nonspeech}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edge-ser-speech-check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True, metavar="[KIND=]PATH")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--seeds", type=int, default=5, help="generated clips per non-speech kind")

    def work(args: argparse.Namespace) -> None:
        result = measure(args.model, args.data, args.seeds)
        print(f"model {result['model']}")
        for corpus, r in result["speech"].items():
            print(f"{corpus:>10}: {r['speech_like']}/{r['utterances']} utterances labelled normally "
                  f"({100 * r['fraction']:.2f} %), {r['clips']} clips")
        for kind, r in result["nonspeech"].items():
            print(f"{kind:>14}: {r['speech_like']}/{r['utterances']} utterances speech-like")

    return run_tool(parser, argv, work)


if __name__ == "__main__":
    sys.exit(main())
