"""What every training tool's main() does around its work: parse, log, report mistakes.

edge-ser-train, edge-ser-convert, build_default and summarise print progress through `logging`
and must fail like the runtime's `edge-ser` does (`<prog>: error: <message>`, status 2). Logging
is configured here, when a tool runs, never at import: importing a training module from a test or
a notebook must not take over the root logger.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from edge_ser.errors import exit_status


def run_tool(parser: argparse.ArgumentParser, argv: list[str] | None,
             work: Callable[[argparse.Namespace], object]) -> int:
    """Parse `argv`, set up logging, run `work(args)`; the exit status (0, or 2 for a user mistake).
    What `work` returns (a summary, a manifest) is for callers in Python, not an exit status."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def run() -> None:
        work(args)

    return exit_status(parser.prog, run)
