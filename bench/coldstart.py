"""Cold start: `import edge_ser.model.classifier` + `Classifier(model)` in a fresh interpreter, and its peak RSS.

Why a subprocess: imports are cached per process and peak RSS only ever grows, so the only honest
measurement is a new Python each time. The baseline process starts Python and imports NumPy and
nothing else: what is left above it is edge-ser's own cost (SciPy, the TFLite runtime, the model).
Both kinds of process alternate, round after round, so machine load hits both alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.context import Context
from bench.results import Target, figure
from bench.timing import summary

NAME = "coldstart"
TITLE = "Cold start (fresh process)"
LOAD_TIME = Target("<", 0.5)
PEAK_RSS_MB = Target("<", 60.0)

HWM = "int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
REPORT = ("import json, re, resource; print(json.dumps({'seconds': t_end - t0, 'hwm_kb': hwm, "
          "'maxrss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'extra': extra}))")
SNIPPETS = {
    "baseline": "import re, time; t0 = time.perf_counter(); import numpy; t_end = time.perf_counter(); "
                f"hwm = {HWM}; extra = {{}}; " + REPORT,
    "edge_ser": ("import re, sys, time; t0 = time.perf_counter(); import edge_ser.model.classifier; "
                 "t1 = time.perf_counter(); c = edge_ser.model.classifier.Classifier(sys.argv[1]); "
                 f"t_end = time.perf_counter(); hwm = {HWM}; "
                 "import numpy; from edge_ser.features.frontend import mfcc; "
                 "mfcc(numpy.zeros(16000, numpy.float32), c.manifest.features); "
                 "extra = {'import_s': t1 - t0, 'load_s': t_end - t1, 'backend': c.backend, "
                 "'first_mfcc_s': time.perf_counter() - t_end, "
                 f"'hwm_after_first_mfcc_kb': {HWM}}}; " + REPORT),
}


def spawn(snippet: str, model: str) -> dict[str, Any]:
    """One fresh interpreter; its own timing, its peak RSS, and the wall time seen from outside."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", snippet, model], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": wall}


def _stats(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = [r[key] for r in runs]
    return {**summary(values), "repeats": len(values), "raw": values}


def run(ctx: Context) -> dict[str, Any]:
    if ctx.model.path is None:
        return {"skipped": ctx.model.note, "figures": [], "timings": {}}
    model = str(ctx.model.path)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SNIPPETS}
    names = list(SNIPPETS)
    for r in range(ctx.repeats):
        for name in names[r % 2 :] + names[: r % 2]:
            runs[name].append(spawn(SNIPPETS[name], model))
    timings = {name: {key: _stats(rs, key) for key in ("seconds", "wall_s", "hwm_kb", "maxrss_kb")}
               for name, rs in runs.items()}
    edge = runs["edge_ser"]
    timings["edge_ser"] |= {key: _stats([r["extra"] for r in edge], key)
                            for key in ("import_s", "load_s", "first_mfcc_s", "hwm_after_first_mfcc_kb")}
    wall_ratio = summary([e["wall_s"] / b["wall_s"] for e, b in zip(edge, runs["baseline"], strict=True)])
    t, base = timings["edge_ser"], timings["baseline"]
    edge_mb, base_mb = t["hwm_kb"]["median"] / 1024, base["hwm_kb"]["median"] / 1024
    figures = [
        figure("import_load_s", "import edge_ser.model.classifier + Classifier(model)", t["seconds"]["median"], "s",
               LOAD_TIME, f"import {t['import_s']['median']:.3f} s + load {t['load_s']['median']:.3f} s; "
               f"baseline import numpy {base['seconds']['median']:.3f} s"),
        figure("peak_rss_mb", "Peak RSS after model load", edge_mb, "MB", PEAK_RSS_MB,
               f"baseline python+numpy {base_mb:.1f} MB (+{edge_mb - base_mb:.1f} MB)"),
        figure("wall_ratio", "Process wall time, edge_ser / python+numpy", wall_ratio["median"], "x", None,
               f"{t['wall_s']['median']:.3f} s vs {base['wall_s']['median']:.3f} s (includes first MFCC)"),
        figure("first_mfcc_s", "First MFCC call after load (loads the FFT binding)",
               t["first_mfcc_s"]["median"], "s", None,
               f"peak RSS after it {t['hwm_after_first_mfcc_kb']['median'] / 1024:.1f} MB"),
    ]
    return {"figures": figures, "timings": timings, "ratios": {"wall_edge_over_baseline": wall_ratio},
            "backend": edge[0]["extra"]["backend"],
            "notes": ["fresh `python -c` per sample, page cache warm; seconds = in-process perf_counter "
                      "around the imports (and the model load)",
                      "peak RSS = VmHWM of the child's own address space: its ru_maxrss (kept in the raw "
                      "timings) also counts the parent's peak, which Linux carries across (v)fork+exec"]}
