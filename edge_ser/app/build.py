"""Building what a device config asks for: its state directory, its audio source and its MQTT
publisher, with setup errors attributed to the config that caused them."""

from __future__ import annotations

import getpass
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from edge_ser.app.config import SPOOL_FILE, AudioConfig, Config, default_spool_path
from edge_ser.app.state_files import SQLITE_COMPANIONS, adopt_legacy
from edge_ser.audio.source import AudioSource
from edge_ser.errors import ConfigError

if TYPE_CHECKING:
    from edge_ser.model.classifier import Classifier
    from edge_ser.mqtt.publisher import MqttPublisher

log = logging.getLogger("edge_ser.app.build")


def user_state_dir() -> Path:
    """The per-user state directory (XDG Base Directory: $XDG_STATE_HOME, else ~/.local/state)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge-ser"


def _unusable(path: Path) -> str | None:
    """Why the daemon cannot keep its state in `path` (created if missing), or None if it can."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None if os.access(path, os.W_OK | os.X_OK) else "not writable"


def state_dir_to_use(cfg: Config, *, from_command_line: bool) -> str | None:
    """`cfg.state.dir`, created, when this user can write it. The profiles name the systemd
    service's /var/lib/edge-ser; a normal user trying a profile ad hoc gets the per-user state
    directory instead, with a warning, rather than a refusal or a spool in a system path. A
    directory given on the command line is taken at its word: if it fails, that is the error."""
    if cfg.state.dir is None:
        return None
    reason = _unusable(Path(cfg.state.dir))
    if reason is None:
        return cfg.state.dir
    if from_command_line:
        raise ConfigError(f"command line: state.dir: cannot use {cfg.state.dir}: {reason}")
    fallback = user_state_dir()
    fallback_reason = _unusable(fallback)
    if fallback_reason is not None:
        raise ConfigError(f"{cfg.origin}: state.dir: cannot use {cfg.state.dir} ({reason}), nor the per-user "
                          f"{fallback} ({fallback_reason})")
    log.warning("state.dir %s from %s: %s for user %s; keeping the spool and sequence numbers in %s instead",
                cfg.state.dir, cfg.origin, reason, getpass.getuser(), fallback)
    return str(fallback)


def open_source(cfg: AudioConfig, sample_rate: int) -> AudioSource:
    """The source `cfg` asks for, delivering `sample_rate` (the model's rate)."""
    chunk = max(1, cfg.chunk_ms * sample_rate // 1000)
    if cfg.source == "file":
        from edge_ser.audio.file import FileSource

        assert cfg.file is not None  # AudioConfig checks it
        return FileSource(cfg.file, sample_rate, chunk, realtime=cfg.realtime, loop=cfg.loop)
    if cfg.source == "stdin":
        from edge_ser.audio.stdin import StdinSource

        return StdinSource(cfg.stdin_rate, sample_rate, cfg.chunk_ms)
    from edge_ser.audio.mic import MicSource

    return MicSource(cfg.device, sample_rate, preferred_rate=cfg.rate, channels=cfg.channels,
                     chunk_ms=cfg.chunk_ms)


def make_publisher(cfg: Config, classifier: Classifier) -> MqttPublisher:
    """The MQTT publisher, with its setup errors attributed to the config that caused them. Its
    spool, when it is the state directory's own, first adopts the one shared spool.sqlite of
    earlier versions (app.state_files.adopt_legacy), so events queued before an upgrade are sent."""
    from edge_ser.mqtt.publisher import MqttPublisher

    spool = cfg.mqtt.settings.spool_path
    if cfg.state.dir is not None and spool == str(default_spool_path(cfg.state.dir, cfg.device.id)):
        adopt_legacy(Path(spool), SPOOL_FILE, "event spool", SQLITE_COMPANIONS)

    try:
        publisher = MqttPublisher(cfg.mqtt.settings, model_name=classifier.manifest.name,
                                  model_version=classifier.manifest.version, labels=list(classifier.labels),
                                  groups=list(cfg.inference.groups) or None)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.origin}: mqtt: {exc}") from None
    return publisher
