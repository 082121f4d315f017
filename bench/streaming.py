"""Streaming MFCC cost per second of audio, against the batch front end doing the same work.

Why: the device never sees a whole signal; it pushes chunks as the microphone delivers them
(1024 samples on the reference device). Whatever `StreamingFrontEnd.push` costs beyond the maths is
paid once per chunk, so small chunks expose it. The batch baseline does exactly the work a push
does (frames -> features + frame energy) over the whole signal, in the cache-sized blocks of
`signal_features` (one pass over all frames of a minute would measure memory traffic, not the
front end).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.context import Context
from bench.results import Target, figure, ratio_figure
from bench.timing import interleave, paired_ratio
from edge_ser.audio.pcm import chunked
from edge_ser.features.config import FeatureConfig
from edge_ser.features.framing import frame_energy_db, frame_spans, windowed_part
from edge_ser.features.frontend import StreamingFrontEnd, signal_features

NAME = "streaming"
TITLE = "Streaming front end (StreamingFrontEnd.push)"
CHUNKS = (160, 1000, 1024, 4096)
HEADLINE_CHUNK = 1000
BATCH_RATIO = Target("<=", 1.2)


def batch(signal: np.ndarray, cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    return signal_features(signal, cfg), frame_energy_db(windowed_part(frame_spans(signal, cfg), cfg))


def stream(chunks: list[np.ndarray], cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    front_end = StreamingFrontEnd(cfg)
    blocks = [front_end.push(chunk) for chunk in chunks]
    return np.concatenate([b.features for b in blocks]), np.concatenate([b.energy_db for b in blocks])


def cases(signal: np.ndarray, cfg: FeatureConfig) -> dict[str, Callable[[], object]]:
    out: dict[str, Callable[[], object]] = {"batch": lambda: batch(signal, cfg)}
    for size in CHUNKS:
        chunks = list(chunked(signal, size))  # split outside the timed call: a mic delivers them split
        out[f"chunk_{size}"] = lambda chunks=chunks: stream(chunks, cfg)
    return out


def identical_to_batch(signal: np.ndarray, cfg: FeatureConfig) -> bool:
    """The design's chunk-size invariance, checked on the benchmark audio itself."""
    reference = batch(signal, cfg)
    return all(np.array_equal(a, b) for size in CHUNKS
               for a, b in zip(reference, stream(list(chunked(signal, size)), cfg), strict=True))


def run(ctx: Context) -> dict[str, Any]:
    cfg = ctx.features
    figures, timings, ratios, identical = [], {}, {}, {}
    for seconds, signal in sorted(ctx.speech.signals.items()):
        stats = interleave(cases(signal, cfg), ctx.repeats, ctx.min_sample_s)
        timings[f"{seconds}s"] = {name: s.to_dict() for name, s in stats.items()}
        identical[f"{seconds}s"] = identical_to_batch(signal, cfg)
        per_second = stats["batch"].median / seconds * 1e3
        figures.append(figure(f"batch_ms_per_s_{seconds}s", f"Batch features+energy cost ({seconds} s speech)",
                              per_second, "ms per s of audio"))
        for size in CHUNKS:
            ratio = paired_ratio(stats[f"chunk_{size}"], stats["batch"])
            ratios[f"{seconds}s_chunk_{size}"] = ratio
            cost = stats[f"chunk_{size}"].median / seconds * 1e3
            figures.append(ratio_figure(
                f"stream_ratio_{size}_{seconds}s", f"Streaming/batch, {size}-sample chunks ({seconds} s)",
                ratio, BATCH_RATIO if size == HEADLINE_CHUNK else None,
                f"{cost:.2f} ms per s of audio ({cost / 10:.3f} % of a core)"))
    return {"figures": figures, "timings": timings, "ratios": ratios, "identical_to_batch": identical,
            "notes": [f"headline chunk {HEADLINE_CHUNK} samples carries the target; the device reads 1024",
                      "batch = signal_features (blocks of 256 frames) + frame_energy_db over the whole signal, "
                      "the same work StreamingFrontEnd.push does"]}
