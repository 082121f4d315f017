"""Building what a device config asks for: its audio source and its MQTT publisher, with setup
errors attributed to the config that caused them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_ser.app.config import AudioConfig, Config
from edge_ser.audio.source import AudioSource
from edge_ser.errors import ConfigError

if TYPE_CHECKING:
    from edge_ser.model.classifier import Classifier
    from edge_ser.mqtt.publisher import MqttPublisher


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
    """The MQTT publisher, with its setup errors attributed to the config that caused them."""
    from edge_ser.mqtt.publisher import MqttPublisher

    try:
        publisher = MqttPublisher(cfg.mqtt.settings, model_name=classifier.manifest.name,
                                  model_version=classifier.manifest.version, labels=list(classifier.labels),
                                  groups=list(cfg.inference.groups) or None)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.origin}: mqtt: {exc}") from None
    return publisher
