"""User-facing errors: each carries a one-line message that names what is wrong and where.

The CLI and the daemon print these without a traceback; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class EdgeSerError(Exception):
    """Base class for mistakes a user can fix (bad file, bad config, mismatched model)."""


class ConfigError(EdgeSerError):
    """A configuration value is missing, unknown or out of range."""


class AudioFileError(EdgeSerError):
    """An audio file cannot be read; the message names the file and the reason."""


class ModelError(EdgeSerError):
    """A model or its manifest is missing, corrupt, or does not fit this runtime."""
