"""The Recogniser pushed chunk by chunk, against the same work done in one push.

Why: the device never sees a whole signal; it pushes chunks as the microphone delivers them
(1024 samples on the reference device). Whatever a push costs beyond the signal processing and
the classifier (call overhead, buffer handling, per-frame bookkeeping) is paid once per chunk, so
small chunks expose it. The baseline is the same Recogniser, model and audio given the whole
signal in one push: the same frames, the same windows, the same invokes, with per-push overhead
paid once. The outputs are checked to be identical for every chunking.

A reference figure prices a microphone that cannot open at the model's rate: the same speech at
44.1 kHz, in chunks of the same duration, through the device's streaming resampler and then the
Recogniser, against the 16 kHz chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.context import Context
from bench.results import Target, figure, ratio_figure
from bench.timing import interleave, paired_ratio
from edge_ser.audio.resampler import StreamResampler
from edge_ser.audio.wavfile import resample
from edge_ser.model.classifier import Classifier
from edge_ser.recognise.recogniser import Recogniser, UtteranceEnded, WindowScored

NAME = "streaming"
TITLE = "Recogniser: pushed chunks vs one push (same work)"
CHUNKS = (160, 1000, 1024, 4096)
HEADLINE_CHUNK = 1024
BATCH_RATIO = Target("<=", 1.3)
MIC_RATE = 44100  # a common rate of USB microphones and codecs that offer no 16 kHz mode


def recognise(recogniser: Recogniser, chunks: list[np.ndarray], rate: int | None = None) -> list[Any]:
    """One run from the same start: a fresh stream and, for a model that adapts to its speaker,
    the prior again (otherwise each run would hear the audio with the last run's voice in mind).
    With `rate`, the chunks were captured at that rate and are resampled as the microphone source does."""
    recogniser.reset()
    recogniser.reset_adaptation()
    if rate is None:
        outputs = [item for chunk in chunks for item in recogniser.push(chunk)]
    else:
        resampler = StreamResampler(rate, recogniser.features.sample_rate)
        outputs = [item for chunk in chunks for item in recogniser.push(resampler.push(chunk))]
        outputs += recogniser.push(resampler.flush())
    return outputs + recogniser.flush()


def fingerprint(outputs: list[Any]) -> list[tuple[Any, ...]]:
    return [(type(o).__name__, o.start, o.end, o.probabilities.tobytes()) for o in outputs
            if isinstance(o, WindowScored | UtteranceEnded)]


def split(signal: np.ndarray, size: int) -> list[np.ndarray]:
    """Chunks made outside the timed call: a microphone delivers them split."""
    return [signal[i : i + size] for i in range(0, len(signal), size)]


def cases(signal: np.ndarray, at_mic_rate: np.ndarray, recogniser: Recogniser) -> dict[str, Callable[[], object]]:
    """The timed runs; `at_mic_rate` is the same speech as a MIC_RATE microphone would capture it."""
    out: dict[str, Callable[[], object]] = {"one_push": lambda: recognise(recogniser, [signal])}
    for size in CHUNKS:
        chunks = split(signal, size)
        out[f"chunk_{size}"] = lambda chunks=chunks: recognise(recogniser, chunks)
    mic_chunks = split(at_mic_rate, round(HEADLINE_CHUNK * MIC_RATE / recogniser.features.sample_rate))
    out[f"mic_{MIC_RATE}"] = lambda: recognise(recogniser, mic_chunks, MIC_RATE)
    return out


def run(ctx: Context) -> dict[str, Any]:
    if ctx.model.path is None:
        return {"skipped": ctx.model.note, "figures": [], "timings": {}}
    recogniser = Recogniser.from_manifest(Classifier(ctx.model.path))
    figures, timings, ratios, identical, windows = [], {}, {}, {}, {}
    for seconds, signal in sorted(ctx.speech.signals.items()):
        at_mic_rate = resample(signal, recogniser.features.sample_rate, MIC_RATE)  # made once, outside the timing
        stats = interleave(cases(signal, at_mic_rate, recogniser), ctx.repeats, ctx.min_sample_s)
        timings[f"{seconds}s"] = {name: s.to_dict() for name, s in stats.items()}
        reference = fingerprint(recognise(recogniser, [signal]))
        windows[f"{seconds}s"] = sum(row[0] == "WindowScored" for row in reference)
        windows[f"{seconds}s_mic_{MIC_RATE}"] = sum(row[0] == "WindowScored" for row in fingerprint(
            recognise(recogniser, split(at_mic_rate, 4096), MIC_RATE)))
        identical[f"{seconds}s"] = all(fingerprint(recognise(recogniser, split(signal, size))) == reference
                                       for size in CHUNKS)
        per_second = stats["one_push"].median / seconds * 1e3
        figures.append(figure(f"one_push_ms_per_s_{seconds}s", f"One push, whole signal ({seconds} s speech)",
                              per_second, "ms per s of audio", None,
                              f"{windows[f'{seconds}s']} windows scored"))
        for size in CHUNKS:
            ratio = paired_ratio(stats[f"chunk_{size}"], stats["one_push"])
            ratios[f"{seconds}s_chunk_{size}"] = ratio
            cost = stats[f"chunk_{size}"].median / seconds * 1e3
            figures.append(ratio_figure(
                f"stream_ratio_{size}_{seconds}s", f"Pushed/one push, {size}-sample chunks ({seconds} s)",
                ratio, BATCH_RATIO if size == HEADLINE_CHUNK else None,
                f"{cost:.2f} ms per s of audio ({cost / 10:.3f} % of a core)"))
        ratio = paired_ratio(stats[f"mic_{MIC_RATE}"], stats[f"chunk_{HEADLINE_CHUNK}"])
        ratios[f"{seconds}s_mic_{MIC_RATE}"] = ratio
        cost = stats[f"mic_{MIC_RATE}"].median / seconds * 1e3
        figures.append(ratio_figure(
            f"mic_ratio_{MIC_RATE}_{seconds}s",
            f"{MIC_RATE / 1000:g} kHz microphone, resampled / 16 kHz, chunks of {HEADLINE_CHUNK} samples' duration "
            f"({seconds} s)", ratio, None, f"{cost:.2f} ms per s of audio ({cost / 10:.3f} % of a core)"))
    return {"figures": figures, "timings": timings, "ratios": ratios, "identical_outputs": identical,
            "windows": windows,
            "notes": [f"headline chunk {HEADLINE_CHUNK} samples (what the device's microphone delivers) carries "
                      "the target",
                      "one push = the same Recogniser given the whole signal at once: same frames, windows and "
                      "classifier invokes; features are computed only for frames inside windows in both"]}
