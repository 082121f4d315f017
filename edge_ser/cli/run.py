"""`edge-ser run`: the on-device daemon, configured by one TOML file and overriding flags.

Logs are structured lines (key=value, or JSON) on stdout for journald, quiet by default. With
`--stdout` the events take stdout, one JSON line each, and the logs move to stderr, so a pipe
into `jq` sees events only.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING, Any

from edge_ser.errors import ConfigError

if TYPE_CHECKING:  # the CLI imports every command to build its parser: keep that import light
    pass

# flag (argparse dest) -> config key it overrides
OVERRIDES = {
    "device_id": "device.id",
    "device": "audio.device", "rate": "audio.rate", "file": "audio.file", "stdin_rate": "audio.stdin_rate",
    "model": "model.path", "threads": "model.threads", "hop_frames": "model.hop_frames",
    "threshold": "inference.threshold", "ema": "inference.ema",
    "mqtt_host": "mqtt.host", "mqtt_port": "mqtt.port", "state_dir": "state.dir",
    "log_level": "log.level", "log_format": "log.format",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="device profile (TOML); flags override it")
    src = p.add_argument_group("audio source (default: the microphone)")
    src.add_argument("--device", metavar="NAME|INDEX", help="input device: index or part of its name")
    src.add_argument("--rate", type=int, metavar="HZ", help="capture rate to try first (default 16000)")
    src.add_argument("--file", metavar="WAV", help="listen to a WAV file instead of the microphone")
    src.add_argument("--fast", action="store_true", help="file source: as fast as possible, not real time")
    src.add_argument("--loop", action="store_true", help="file source: start again at the end")
    src.add_argument("--stdin", action="store_true", help="raw 16-bit little-endian mono PCM on stdin")
    src.add_argument("--stdin-rate", type=int, metavar="HZ", help="sample rate of --stdin (default 16000)")
    p.add_argument("--device-id", metavar="ID", help="device id in MQTT topics and events")
    p.add_argument("--model", metavar="PATH", help="model .tflite (its .json manifest beside it)")
    p.add_argument("--threads", type=int, help="interpreter threads")
    p.add_argument("--hop-frames", type=int, metavar="N", help="frames between windows (0: the model's)")
    p.add_argument("--threshold", type=float, help="below this confidence the label is 'uncertain'")
    p.add_argument("--ema", type=float, help="weight of the newest window in the smoothed state")
    out = p.add_argument_group("outputs")
    out.add_argument("--mqtt-host", metavar="HOST")
    out.add_argument("--mqtt-port", type=int, metavar="PORT")
    out.add_argument("--no-mqtt", action="store_true", help="do not connect to a broker")
    out.add_argument("--stdout", action="store_true", help="print each event as a JSON line on stdout")
    out.add_argument("--state-dir", metavar="DIR",
                     help="durable event spool, sequence number and speaker adaptation (files per device id)")
    out.add_argument("--log-format", choices=("kv", "json"))


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys the command line sets."""
    found: dict[str, Any] = {key: getattr(args, dest) for dest, key in OVERRIDES.items()
                             if getattr(args, dest, None) is not None}
    if args.file is not None:
        found["audio.source"] = "file"
    if args.stdin:
        found["audio.source"] = "stdin"
    if args.fast:
        found["audio.realtime"] = False
    if args.loop:
        found["audio.loop"] = True
    if args.no_mqtt:
        found["mqtt.enabled"] = False
    if args.stdout:
        found["output.stdout"] = True
    if args.verbose:
        found["log.level"] = "debug" if args.verbose > 1 else "info"
    return found


def main(args: argparse.Namespace) -> int:
    from edge_ser.app.build import make_publisher, open_source, state_dir_to_use
    from edge_ser.app.config import load_config
    from edge_ser.app.daemon import Daemon
    from edge_ser.app.logs import setup_logging
    from edge_ser.model.classifier import Classifier

    overrides = overrides_from(args)
    cfg = load_config(args.config, overrides)
    setup_logging(cfg)
    state_dir = state_dir_to_use(cfg, from_command_line=args.state_dir is not None)
    if state_dir != cfg.state.dir:  # load again: the spool path follows state.dir
        cfg = load_config(args.config, {**overrides, "state.dir": state_dir})
    classifier = Classifier(cfg.model.path, num_threads=cfg.model.threads, backend=cfg.model.backend)
    source = open_source(cfg.audio, classifier.manifest.features.sample_rate)
    publisher = make_publisher(cfg, classifier) if cfg.mqtt.enabled else None
    daemon = Daemon(cfg, source, classifier, publisher=publisher, stdout=sys.stdout if cfg.output.stdout else None)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: daemon.stop())
    if publisher is not None:
        publisher.set_command_handler(daemon.handle_command)
        try:
            publisher.start()
        except ConfigError as exc:
            raise ConfigError(f"{cfg.origin}: mqtt: {exc}") from None
    try:
        return daemon.run()
    finally:
        if publisher is not None:
            publisher.stop(timeout=1.5)
