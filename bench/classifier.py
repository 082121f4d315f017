"""Classifier latency per window: int8 vs fp32 TFLite vs Keras on one network, plus the real model.

Why build a network here: the shipped model exists only as int8, so int8-vs-fp32-vs-Keras has to
compare a network we can convert all three ways. It is built with the converter's own
`build_model` at the shipped model's input shape, and its int8 version is calibrated on real
speech windows from the same pipeline, so the three differ only in how they run. The shipped
int8 model is timed beside them on ai-edge-litert and, through a NumPy-1 venv, on tflite-runtime.
TensorFlow is imported here and nowhere earlier in the run (it would distort everything after it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.context import REPO, Context
from bench.results import figure, ratio_figure
from bench.timing import Stats, interleave, paired_ratio
from edge_ser.model.classifier import Classifier, load_interpreter_class, quantise, tensor_quantisation
from edge_ser.recognise.gate import GateConfig
from edge_ser.recognise.recogniser import speech_windows
from edge_ser.recognise.segmenter import WindowSpec

NAME = "classifier"
TITLE = "Classifier latency per window"
TFLITE_VENV = REPO / "bench" / ".venv-tflite"
INSTALL_MARKER = TFLITE_VENV / ".installed"
INSTALL_TIMEOUT_S = 900


def real_windows(ctx: Context) -> np.ndarray:
    """Normalised speech windows exactly as the device would classify them."""
    m = ctx.model.manifest
    signal = ctx.speech.signals[max(ctx.speech.signals)]
    windows = speech_windows(signal, m.features, GateConfig(), WindowSpec(m.window_frames, m.hop_frames),
                             adaptation=m.adaptation)
    if not windows:
        raise RuntimeError("the benchmark speech produced no analysis windows")
    return np.stack([w.features for w in windows])


def single_threaded_tensorflow(tf: Any) -> str:
    """Ask TensorFlow for one intra- and one inter-op thread, like the TFLite interpreters
    (Classifier's default), so the ratios compare kernels, not cores; say what it got.

    Why not simply set them: TensorFlow refuses (RuntimeError) once its runtime is up, which is the
    case when anything in the process used it before (another test in a pytest run, say). The
    benchmark then still runs, and its note says with how many threads Keras was timed."""
    threading = tf.config.threading
    try:
        threading.set_intra_op_parallelism_threads(1)
        threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        intra, inter = threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()
        if (intra, inter) != (1, 1):
            return (f"TensorFlow was already initialised in this process: Keras ran with intra/inter-op "
                    f"threads {intra or 'default'}/{inter or 'default'}, not 1")
    return "TensorFlow intra/inter-op threads 1"


def build_networks(ctx: Context, calibration: np.ndarray) -> tuple[Any, bytes, bytes, str]:
    """(Keras model, fp32 .tflite, int8 .tflite, TensorFlow threading note) of one untrained network
    of the shipped size. Weights do not change latency; calibration on real windows gives realistic
    int8 ranges."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    threads = single_threaded_tensorflow(tf)
    from edge_ser_train.export import to_int8_tflite
    from edge_ser_train.models import ModelConfig, build_model

    m = ctx.model.manifest
    model = build_model(m.window_frames, m.features.n_features, len(m.labels), ModelConfig(), seed=0)
    fp32 = bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return model, fp32, to_int8_tflite(model, calibration), threads


def invoker(interpreter_class: Callable[..., Any], content: bytes, x: np.ndarray) -> Callable[[], object]:
    """An interpreter with its input set once, so only `invoke` is timed (as the worker does)."""
    interpreter = interpreter_class(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    return interpreter.invoke


def input_for(interpreter_class: Callable[..., Any], content: bytes, window: np.ndarray) -> np.ndarray:
    """The window in the model's input dtype, using the quantisation written in the file."""
    interpreter = interpreter_class(model_content=content)
    return quantise(window[None, ...], tensor_quantisation(interpreter.get_input_details()[0]))


def ensure_tflite_venv() -> tuple[Path | None, str]:
    """The NumPy-1 venv with tflite-runtime, created on first use; (python, "") or (None, reason)."""
    python = TFLITE_VENV / "bin" / "python"
    if INSTALL_MARKER.exists():
        return python, ""
    steps = [[sys.executable, "-m", "venv", str(TFLITE_VENV)],
             [str(python), "-m", "pip", "install", "--quiet", "tflite-runtime", "numpy<2", "scipy"],
             [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(REPO)]]
    for step in steps:
        try:
            subprocess.run(step, check=True, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
            return None, f"`{' '.join(step[1:4])}` failed: {' / '.join(tail)}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"`{' '.join(step[1:4])}` failed: {exc}"
    INSTALL_MARKER.write_text("ok\n")
    return python, ""


def run_tflite_runtime(ctx: Context, models: dict[str, tuple[bytes, np.ndarray]]) -> dict[str, Any]:
    """Time the same models and inputs on tflite-runtime in its venv; a failure becomes a reason."""
    python, reason = ensure_tflite_venv()
    if python is None:
        return {"error": reason}
    spec: dict[str, Any] = {"models": {}, "repeats": ctx.repeats, "min_sample_s": ctx.min_sample_s}
    for name, (content, x) in models.items():
        model_path, input_path = ctx.work_dir / f"{name}.tflite", ctx.work_dir / f"{name}.npy"
        model_path.write_bytes(content)
        np.save(input_path, x)
        spec["models"][name] = {"path": str(model_path), "input": str(input_path)}
    spec_path = ctx.work_dir / "tflite_spec.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run([str(python), "-m", "bench.tflite_worker", str(spec_path)], cwd=REPO,
                          capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": "worker failed: " + " / ".join(done.stderr.strip().splitlines()[-3:])}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> dict[str, Any]:
    if ctx.model.path is None:
        return {"skipped": ctx.model.note, "figures": [], "timings": {}}
    windows = real_windows(ctx)
    window = windows[0]
    classifier = Classifier(ctx.model.path, backend="ai-edge-litert")
    _, litert = load_interpreter_class("ai-edge-litert")
    model, fp32, int8, threads = build_networks(ctx, windows)
    shipped = ctx.model.path.read_bytes()
    batch = window[None, ...]
    inputs = {"shipped_int8": (shipped, input_for(litert, shipped, window)),
              "bench_int8": (int8, input_for(litert, int8, window)),
              "bench_fp32": (fp32, batch)}
    cases: dict[str, Callable[[], object]] = {
        f"litert_{name}": invoker(litert, content, x) for name, (content, x) in inputs.items()}
    cases |= {"shipped_predict": lambda: classifier.predict(window),
              "keras_predict": lambda: model.predict(batch, verbose=0),
              "keras_call": lambda: model(batch, training=False)}
    stats = interleave(cases, ctx.repeats, ctx.min_sample_s)
    tflite_runtime = run_tflite_runtime(ctx, inputs)

    def ms(s: Stats) -> str:
        return f"{s.median * 1e3:.3f} ms"

    ratios = {f"{case}_over_litert_bench_int8": paired_ratio(stats[case], stats["litert_bench_int8"])
              for case in ("litert_bench_fp32", "keras_predict", "keras_call")}
    figures = [
        figure("shipped_int8_invoke_ms", "Shipped int8 model, invoke (ai-edge-litert)",
               stats["litert_shipped_int8"].median * 1e3, "ms"),
        figure("shipped_predict_ms", "Shipped int8 model, Classifier.predict (quantise+invoke+softmax fix)",
               stats["shipped_predict"].median * 1e3, "ms"),
        figure("bench_int8_invoke_ms", "Same-network int8, invoke (ai-edge-litert)",
               stats["litert_bench_int8"].median * 1e3, "ms"),
        ratio_figure("fp32_over_int8", "Same network: fp32 TFLite / int8 TFLite",
                     ratios["litert_bench_fp32_over_litert_bench_int8"], None, ms(stats["litert_bench_fp32"])),
        ratio_figure("keras_predict_over_int8", "Same network: Keras model.predict / int8 TFLite",
                     ratios["keras_predict_over_litert_bench_int8"], None, ms(stats["keras_predict"])),
        ratio_figure("keras_call_over_int8", "Same network: Keras model(x, training=False) / int8 TFLite",
                     ratios["keras_call_over_litert_bench_int8"], None, ms(stats["keras_call"])),
    ]
    if "timings" in tflite_runtime:
        rt = tflite_runtime["timings"]["shipped_int8"]["median_s"]
        figures.append(figure(
            "tflite_runtime_over_litert", "Shipped int8: tflite-runtime / ai-edge-litert invoke",
            rt / stats["litert_shipped_int8"].median, "x", None,
            f"{rt * 1e3:.3f} ms (tflite-runtime {tflite_runtime['tflite_runtime']}, separate process)"))
    return {"figures": figures, "timings": {name: s.to_dict() for name, s in stats.items()}, "ratios": ratios,
            "tflite_runtime": tflite_runtime,
            "models": {name: {"bytes": len(content), "input_dtype": str(x.dtype)}
                       for name, (content, x) in inputs.items()},
            "notes": [f"all interpreters num_threads=1; {threads}",
                      "bench_* = edge_ser_train.models.build_model(ModelConfig()) at the shipped input shape, "
                      "untrained, int8 calibrated on real speech windows",
                      "tflite-runtime runs in bench/.venv-tflite (NumPy 1.x) in a separate process right "
                      "after the in-process rounds; its ratio to ai-edge-litert is therefore cross-process"]}
