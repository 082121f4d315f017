"""The speaker statistics of an adapting model, kept in the state directory across restarts.

A kiosk restarted at night should not greet its regular staff with a cold start in the morning,
so the daemon saves its adapter (features.adaptation) now and then and at shutdown, and restores
it at start. What is stored is a summary of voices (mean cepstra, a pitch histogram), never audio;
it belongs to one model (its sha256) and one device id (`adaptation.<id>.json`: another device
sharing the state directory hears other people), and `reset_adaptation` overwrites it with the prior.
"""

from __future__ import annotations

import json
import logging
import time

from edge_ser.app.state_files import adopt_legacy, device_file, write_atomically
from edge_ser.errors import ConfigError
from edge_ser.features.adaptation import SpeakerAdapter

ADAPTATION_FILE = "adaptation.json"  # the shared name before the statistics were kept per device id
SAVE_INTERVAL_S = 60.0  # at most one write a minute while people speak: SD cards wear out

log = logging.getLogger("edge_ser.app.adaptation")


class AdaptationStore:
    """Saves and restores one adapter; without a state directory it only keeps the adapter in memory."""

    def __init__(self, state_dir: str | None, device_id: str, adapter: SpeakerAdapter, model_sha256: str) -> None:
        self.adapter, self.model_sha256 = adapter, model_sha256
        self.path = None if state_dir is None else device_file(state_dir, ADAPTATION_FILE, device_id)
        self._last_save = time.monotonic()

    def load(self) -> None:
        """Carry on from the saved statistics if they belong to this model; otherwise start from the
        prior and say why (a new model, or a file damaged by a power cut, is no reason to stop).
        The shared adaptation.json of earlier versions is adopted first (app.state_files.adopt_legacy)."""
        if self.path is None:
            return
        adopt_legacy(self.path, ADAPTATION_FILE, "speaker adaptation")
        if not self.path.is_file():
            return
        try:
            saved = json.loads(self.path.read_text())
            if not isinstance(saved, dict):
                raise ConfigError("not a JSON object")
            if saved.get("model_sha256") != self.model_sha256:
                log.info("%s: saved for another model; starting from this model's prior", self.path)
                return
            self.adapter.restore(saved.get("state"))
        except (OSError, ValueError, RecursionError, ConfigError) as exc:  # ValueError: bad JSON or text
            log.warning("%s: cannot restore the speaker adaptation (%s); starting from the model's prior",
                        self.path, exc)
            return
        log.info("speaker adaptation restored from %s: %s", self.path, self.adapter.summary())

    def save(self, force: bool = False) -> None:
        """Write the statistics (atomically), at most every SAVE_INTERVAL_S unless `force`d."""
        now = time.monotonic()
        if self.path is None or not (force or now - self._last_save >= SAVE_INTERVAL_S):
            return
        self._last_save = now
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, json.dumps({"model_sha256": self.model_sha256, "state": self.adapter.state()}))
        except OSError as exc:  # a full or read-only disk costs the adaptation's memory, not the daemon
            log.warning("%s: cannot save the speaker adaptation: %s", self.path, exc)

    def forget(self) -> None:
        """Back to the model's prior, in memory and on disk."""
        self.adapter.reset()
        self.save(force=True)
