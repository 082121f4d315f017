"""Run every benchmark on the same speech and model, write bench/results/*.json and BENCHMARKS.md.

    python -m bench.run_all            # full run, a few minutes
    python -m bench.run_all --quick    # tiny inputs, few repeats: proves everything runs

Each benchmark is a module with NAME, TITLE and `run(Context) -> dict`; adding one means adding
its module to BENCHMARKS (report.py renders any module's figures). The order
matters: cold start runs first and the classifier last, because the classifier benchmark imports
TensorFlow, which would otherwise sit in memory and threads under every later measurement.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import traceback
from pathlib import Path

from bench.context import RAVDESS, REPO, Context, choose_model, load_speech
from bench.report import render
from bench.results import command_line, envelope, write_result

BENCHMARKS = ("bench.coldstart", "bench.mfcc_batch", "bench.streaming", "bench.pipeline_rtf",
              "bench.daemon", "bench.soak", "bench.classifier")  # soak before TensorFlow is loaded
RESULTS = REPO / "bench" / "results"
FULL = {"durations": (10, 60), "repeats": 15, "min_sample_s": 0.05}
QUICK = {"durations": (1, 2), "repeats": 3, "min_sample_s": 0.002}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny inputs and 3 repeats (smoke test)")
    p.add_argument("--model", type=Path, help="int8 .tflite with its .json (default: the bundled model, "
                   "else the tiny test fixture)")
    p.add_argument("--data", type=Path, default=RAVDESS, help="RAVDESS root (Actor_NN/*.wav)")
    p.add_argument("--results", type=Path, default=RESULTS, help="directory for the JSON results")
    p.add_argument("--report", type=Path, default=REPO / "BENCHMARKS.md", help="markdown summary to write")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks (module names)")
    p.add_argument("--note", default="", help="free text stored with every result, e.g. machine load")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    effort = QUICK if args.quick else FULL
    modules = [m for m in BENCHMARKS if not args.only or m.rsplit(".", 1)[1] in args.only]
    failed = []
    with tempfile.TemporaryDirectory(prefix="edge-ser-bench-") as tmp:
        work_dir = Path(tmp)
        ctx = Context(load_speech(effort["durations"], args.data, work_dir), choose_model(args.model),
                      args.quick, effort["repeats"], effort["min_sample_s"], work_dir)
        inputs = {"speech": ctx.speech.describe(), "model": ctx.model.describe()}
        for module_name in modules:
            module = importlib.import_module(module_name)
            print(f"[bench] {module.NAME} ...", file=sys.stderr, flush=True)
            try:
                body = module.run(ctx)
            except Exception as exc:  # one broken benchmark must not hide the others
                traceback.print_exc()
                body = {"error": f"{type(exc).__name__}: {exc}", "figures": [], "timings": {}}
                failed.append(module.NAME)
            record = envelope(module.NAME, module.TITLE, body, quick=args.quick, command=command_line(),
                              run_note=args.note, inputs=inputs)
            print(f"[bench] wrote {write_result(args.results, module.NAME, record)}", file=sys.stderr)
    args.report.write_text(render(args.results))
    print(f"[bench] wrote {args.report}", file=sys.stderr)
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
