"""Smoke test for the benchmarks: each one runs on tiny inputs and writes a well-formed JSON record.

No timing is asserted (a shared CI box makes any threshold flaky); what is checked is that the
code paths execute and that every record has what report.py and readers rely on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import classifier as classifier_bench
from bench import pitch_accuracy, run_all

# The benchmarks start child processes (cold starts; the daemon on a mosquitto broker) and take seconds.
pytestmark = pytest.mark.integration

pytest.importorskip("librosa")
pytest.importorskip("python_speech_features")

LIGHT = ["coldstart", "mfcc_batch", "streaming", "pipeline_rtf"]
HAS_MOSQUITTO = bool(shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin"))
PROCESS_SAMPLES = {"coldstart", "daemon"}  # per-process measurements, not interleaved timing records


def run_quick(tmp_path: Path, only: list[str]) -> list[dict]:
    results, report = tmp_path / "results", tmp_path / "BENCHMARKS.md"
    code = run_all.main(["--quick", "--results", str(results), "--report", str(report), "--only", *only])
    assert code == 0
    records = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    assert len(records) == len(only)
    text = report.read_text()
    for record in records:
        assert record["quick"] is True
        assert record["machine"]["cpu"] and record["machine"]["python"]
        assert "error" not in record and "skipped" not in record
        assert record["figures"], record["benchmark"]
        for fig in record["figures"]:
            assert {"key", "label", "value", "unit", "target", "pass"} <= set(fig)
            assert (fig["pass"] is None) == (fig["target"] is None)
            assert fig["label"] in text
    return records


def timing_entries(tree: object) -> list[dict]:
    """Every {median_s, ...} record anywhere in a result's timings."""
    if isinstance(tree, dict):
        if "median_s" in tree:
            return [tree]
        return [e for value in tree.values() for e in timing_entries(value)]
    return []


def test_light_benchmarks_write_valid_json(tmp_path: Path) -> None:
    records = run_quick(tmp_path, LIGHT)
    for record in records:
        if record["benchmark"] in PROCESS_SAMPLES:
            continue
        entries = timing_entries(record["timings"])
        assert entries, record["benchmark"]
        for entry in entries:
            assert entry["p10_s"] <= entry["median_s"] <= entry["p90_s"]
            assert entry["repeats"] == len(entry["raw_s"]) == run_all.QUICK["repeats"]
    streaming = next(r for r in records if r["benchmark"] == "streaming")
    assert all(streaming["identical_outputs"].values())
    # the 44.1 kHz microphone case classifies the same speech: as many windows as at 16 kHz, give or take one
    for seconds in (k for k in streaming["windows"] if "mic" not in k):
        assert abs(streaming["windows"][f"{seconds}_mic_44100"] - streaming["windows"][seconds]) <= 1
    assert any(f["key"].startswith("mic_ratio_44100") and f["value"] > 1 for f in streaming["figures"])


def test_the_pitch_accuracy_report_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Tones always; speech only where a corpus is (here none: an empty folder)."""
    assert pitch_accuracy.main(["--data", str(tmp_path), "--clips-per-corpus", "1"]) == 0
    out = capsys.readouterr().out
    assert "acf tones:" in out and "spectrum tones:" in out and "tones only" in out


@pytest.mark.skipif(not HAS_MOSQUITTO, reason="mosquitto is not installed")
def test_daemon_benchmark_writes_valid_json(tmp_path: Path) -> None:
    (record,) = run_quick(tmp_path, ["daemon"])
    assert {f["key"] for f in record["figures"]} >= {"cpu_percent", "cpu_over_floor", "steady_rss_mb"}
    assert len(record["timings"]["rss_kb"]["raw"]) >= 1
    assert record["timings"]["floor_cpu_s"] >= 0.0


@pytest.mark.slow
def test_classifier_benchmark_writes_valid_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tensorflow")
    # Creating the tflite-runtime venv needs the network; the smoke test checks that its absence is
    # recorded as a reason instead of failing the run.
    monkeypatch.setattr(classifier_bench, "ensure_tflite_venv", lambda: (None, "not created in smoke test"))
    (record,) = run_quick(tmp_path, ["classifier"])
    assert record["tflite_runtime"] == {"error": "not created in smoke test"}
    assert {"litert_shipped_int8", "litert_bench_fp32", "keras_predict"} <= set(record["timings"])


THREADS_PROBE = """
import sys
import tensorflow as tf
from bench.classifier import single_threaded_tensorflow
if sys.argv[1] == "used":
    tf.constant(1.0) + 1.0  # starts TensorFlow's runtime, as an earlier test in the same process would
print(single_threaded_tensorflow(tf))
"""


@pytest.mark.parametrize(("before", "expected"), [("fresh", "threads 1"), ("used", "already initialised")])
def test_the_classifier_benchmark_survives_a_tensorflow_someone_already_started(
        tmp_path: Path, before: str, expected: str) -> None:
    """TensorFlow refuses new thread counts once its runtime is up; the benchmark must then run on and
    say so, not fail (it did when test_converter ran before it in one pytest process)."""
    done = subprocess.run([sys.executable, "-c", THREADS_PROBE, before], cwd=Path(__file__).parents[1],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout.strip().splitlines()[-1]


def test_soak_runs_with_a_short_duration_and_reports_growth(tmp_path: Path) -> None:
    from bench import soak

    out = tmp_path / "soak.json"
    assert soak.main(["--seconds", "40", "--every", "5", "--warmup", "10", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["audio_s"] == pytest.approx(40.0, abs=0.1)
    assert [s["audio_s"] for s in result["samples"]][:3] == [0.0, 5.0, 10.0]
    assert result["events"] > 0  # speech went through the whole loop
    assert {"rss_growth_mb", "fds", "threads"} <= set(result)
