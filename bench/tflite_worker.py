"""Invoke latency on tflite-runtime, run inside `bench/.venv-tflite` (NumPy 1.x) and printed as JSON.

Why a separate process: tflite-runtime 2.14 is built against NumPy 1 and cannot be imported next
to the NumPy 2 of the main venv; 32-bit Raspberry Pi OS has nothing else, so its speed matters.
Usage: `python -m bench.tflite_worker SPEC.json` from the repository root, where SPEC names each
model file with the `.npy` input to feed it, plus `repeats` and `min_sample_s`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib.metadata import version

import numpy as np
from tflite_runtime.interpreter import Interpreter

from bench.timing import interleave


def invoker(model_path: str, input_path: str) -> Callable[[], object]:
    """An interpreter with its input already set, so only `invoke` is timed."""
    interpreter = Interpreter(model_path=model_path, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.load(input_path))
    return interpreter.invoke


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    cases = {name: invoker(model["path"], model["input"]) for name, model in spec["models"].items()}
    stats = interleave(cases, spec["repeats"], spec["min_sample_s"])
    print(json.dumps({"tflite_runtime": version("tflite-runtime"), "numpy": np.__version__,
                      "timings": {name: s.to_dict() for name, s in stats.items()}}))


if __name__ == "__main__":
    main(sys.argv[1])
