"""edge-ser benchmarks: every figure the issue asks for, measured side by side in one run.

The machine these run on is usually shared (training runs, CI), so no figure here is an absolute
time on its own: each case is timed interleaved with its baseline, round after round, and the
figures are ratios of those paired rounds. `python -m bench.run_all` writes one JSON per benchmark
to `bench/results/` and renders `BENCHMARKS.md` from them (`bench/report.py`).
"""
