"""Whole-pipeline real-time factor: `analyse` over speech as fast as it will go.

Why RTF: it is the number that says how much of one core the device spends on recognition
(RTF 0.01 = 1 % of a core while someone is talking). The front end alone is timed in the same
rounds so the split between features and the rest (gate, windows, classifier) is visible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.context import Context
from bench.results import Target, figure
from bench.timing import interleave, paired_ratio
from edge_ser.audio.pcm import chunked
from edge_ser.features.config import FeatureConfig
from edge_ser.features.frontend import stream_features
from edge_ser.model.classifier import Classifier
from edge_ser.recognise.recogniser import Recogniser, analyse

NAME = "pipeline_rtf"
TITLE = "Whole pipeline (analyse), as fast as possible"
RTF = Target("<=", 0.01)
CHUNK = 4096  # analyse's default


def features_only(signal: np.ndarray, cfg: FeatureConfig) -> int:
    """Every frame's feature columns through the streaming front end (what the recogniser computes
    at most: it skips frames no window needs)."""
    return len(stream_features(chunked(signal, CHUNK), cfg)[0])


def cases(signal: np.ndarray, recogniser: Recogniser) -> dict[str, Callable[[], object]]:
    return {"analyse": lambda: analyse(recogniser, signal, chunk=CHUNK),
            "features_only": lambda: features_only(signal, recogniser.features)}


def run(ctx: Context) -> dict[str, Any]:
    if ctx.model.path is None:
        return {"skipped": ctx.model.note, "figures": [], "timings": {}}
    classifier = Classifier(ctx.model.path)
    recogniser = Recogniser.from_manifest(classifier)
    longest = max(ctx.speech.signals)
    figures, timings, detail = [], {}, {}
    for seconds, signal in sorted(ctx.speech.signals.items()):
        stats = interleave(cases(signal, recogniser), ctx.repeats, ctx.min_sample_s)
        timings[f"{seconds}s"] = {name: s.to_dict() for name, s in stats.items()}
        result = analyse(recogniser, signal, chunk=CHUNK)
        share = paired_ratio(stats["features_only"], stats["analyse"])
        detail[f"{seconds}s"] = {"windows": len(result.windows), "utterances": len(result.utterances),
                                 "front_end_share": share}
        rtf = stats["analyse"].median / seconds
        figures.append(figure(
            f"rtf_{seconds}s", f"Pipeline real-time factor ({seconds} s speech)", rtf, "",
            RTF if seconds == longest else None,
            f"{stats['analyse'].median * 1e3:.1f} ms, {len(result.windows)} windows; "
            f"front end {share['median'] * 100:.0f} % of it"))
    return {"figures": figures, "timings": timings, "detail": detail, "backend": classifier.backend,
            "notes": [f"RTF = processing time / audio duration; the target applies to the longest "
                      f"({longest} s) signal; analyse(chunk={CHUNK}) with the manifest's gate, "
                      f"{classifier.backend} with 1 thread"]}
