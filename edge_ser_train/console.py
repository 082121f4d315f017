"""What every training tool's main() does around its work: parse, log, report mistakes, keep
TensorFlow quiet; and the console entry points, which first check that the 'train' extra is there.

edge-ser-train, edge-ser-convert, build_default and summarise print progress through `logging`
and must fail like the runtime's `edge-ser` does (`<prog>: error: <message>`, status 2). Logging
is configured here, when a tool runs, never at import: importing a training module from a test or
a notebook must not take over the root logger.

This module imports only the standard library and `edge_ser` (the runtime's own dependencies), so
the entry points can say which extra is missing instead of dying in an import traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable, Iterator

from edge_ser.errors import exit_status

# What `pip install 'edge-ser[train]'` brings that the runtime does not have (pyproject.toml).
TRAIN_EXTRA = ("soundfile", "tensorflow", "matplotlib")

# What TensorFlow, its TFLite converter and LiteRT print straight onto fd 2 while a model trains or
# converts: glog-style info and warning lines (errors, "E..." and "F...", pass), the absl preamble,
# the CPU-feature notice's second line and the converter's quantisation summary. Hundreds of lines
# per CV run that bury the progress a user watches for.
TF_NOISE = re.compile(
    r"^([IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .*rebuild TensorFlow"
    r"|fully_quantize: \d+, inference_type: "
    r"|INFO: Created TensorFlow Lite XNNPACK delegate)"
)


def missing_train_extra() -> list[str]:
    """The modules of the 'train' extra that cannot be imported (found without importing them:
    TensorFlow takes seconds to load and `--help` should not wait for it)."""
    return [name for name in TRAIN_EXTRA if importlib.util.find_spec(name) is None]


def entry_point(prog: str, module: str) -> int:
    """Run `module`'s main() as `prog`, or say in one line which extra to install (status 2)."""
    missing = missing_train_extra()
    if missing:
        print(f"{prog}: error: needs the 'train' extra ({', '.join(missing)} not installed): "
              "pip install 'edge-ser[train]'", file=sys.stderr)
        return 2
    main: Callable[[], int] = importlib.import_module(module).main
    return main()


def train_main() -> int:
    """Console entry point of edge-ser-train."""
    return entry_point("edge-ser-train", "edge_ser_train.train")


def convert_main() -> int:
    """Console entry point of edge-ser-convert."""
    return entry_point("edge-ser-convert", "edge_ser_train.convert")


@contextlib.contextmanager
def filtered_fd2(noise: re.Pattern[str]) -> Iterator[None]:
    """Pass what is written to fd 2 on as it comes, less the lines `noise` matches.

    A pipe and a thread rather than a capture file (edge_ser.native_stderr): a training run lasts
    an hour, and a real error or warning must show when it happens, not at the end."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    forward = os.dup(saved)  # the pump's own copy: `saved` is closed when the body ends, maybe before it starts

    def pump() -> None:
        with os.fdopen(read_end, "rb") as pipe, os.fdopen(forward, "wb", buffering=0) as out:
            for line in pipe:
                if not noise.match(line.decode(errors="replace")):
                    out.write(line)

    thread = threading.Thread(target=pump, name="fd2-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the pump reads to its end and stops
        os.close(saved)
        thread.join(timeout=10)


def quiet_tensorflow() -> None:
    """Before TensorFlow loads: its C++ info logs off (a user's own TF_CPP_MIN_LOG_LEVEL wins), its
    Python logger at errors, the libraries' around it at warnings, and the converter's warning about
    input statistics ignored (the int8 input scale comes from the calibration windows, as intended)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # e.g. tf.function retracing advice, per fold
    for name in ("absl", "h5py", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")


def run_tool(parser: argparse.ArgumentParser, argv: list[str] | None,
             work: Callable[[argparse.Namespace], object]) -> int:
    """Parse `argv`, set up logging, run `work(args)`; the exit status (0, or 2 for a user mistake).
    What `work` returns (a summary, a manifest) is for callers in Python, not an exit status."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_tensorflow()

    def run() -> None:
        with filtered_fd2(TF_NOISE):
            work(args)

    return exit_status(parser.prog, run)
