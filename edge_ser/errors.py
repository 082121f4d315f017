"""User-facing errors: each carries a one-line message that names what is wrong and where.

The command-line tools print these without a traceback (`exit_status`); anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


class EdgeSerError(Exception):
    """Base class for mistakes a user can fix (bad file, bad config, mismatched model)."""

    def __str__(self) -> str:
        # Messages quote what the user's files hold (keys, names); a newline or terminal escape in
        # those must neither break the one-line promise nor forge a line in the log.
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in super().__str__())


class ConfigError(EdgeSerError):
    """A configuration value is missing, unknown or out of range."""


class AudioFileError(EdgeSerError):
    """An audio file cannot be read; the message names the file and the reason."""


class ModelError(EdgeSerError):
    """A model or its manifest is missing, corrupt, or does not fit this runtime."""


def read_user_file(path: Path, what: str, error: type[EdgeSerError], missing: str = "") -> str:
    """The text of a file the user named, or `error` saying which file and why it cannot be read
    (`missing`: a hint appended when it does not exist)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found{missing}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None


def exit_status(prog: str, command: Callable[[], int | None]) -> int:
    """Run a command-line tool's work and turn how it ended into its exit status.

    One place for every console entry point (the runtime's `edge-ser` and the training tools), so
    they all fail alike: a user mistake prints `<prog>: error: <message>` and gives 2, as argparse
    does for a bad argument; Ctrl-C gives 130 quietly; any other exception is a bug and keeps its
    traceback. `command` returns the status itself, or None for success.
    """
    try:
        return command() or 0
    except EdgeSerError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
