"""The training tools' user mistakes: a data spec, a corpus folder, an option combination, a recipe.

A subclass of the runtime's EdgeSerError, so every edge-ser tool reports a mistake the same way:
one line naming what is wrong, exit status 2, no traceback (edge_ser.errors.exit_status).
"""

from __future__ import annotations

from edge_ser.errors import EdgeSerError


class TrainingError(EdgeSerError):
    """Training or conversion input a user can fix."""
