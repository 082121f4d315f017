"""`edge-ser monitor`: watch every device under the MQTT prefix, in a Tk window or (`--tui`) in the
terminal.

It connects like the daemon: the same device profile (TOML) gives the broker, TLS and the
username and password source, so a monitor works wherever a device does. Everything heavy (paho,
NumPy, Tk) is imported in `main`, so building the command line stays instant.
"""

from __future__ import annotations

import argparse
from typing import Any

from edge_ser.model.default import DEFAULT_MODEL

OVERRIDES = {"mqtt_host": "mqtt.host", "mqtt_port": "mqtt.port", "prefix": "mqtt.prefix"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="device profile (TOML) whose [mqtt] settings to connect with")
    p.add_argument("--mqtt-host", metavar="HOST")
    p.add_argument("--mqtt-port", type=int, metavar="PORT")
    p.add_argument("--prefix", metavar="TOPIC", help="base topic the devices publish under (default edge-ser)")
    p.add_argument("--tui", action="store_true", help="terminal view instead of the window (SSH, no display)")
    p.add_argument("--interval", type=float, default=0.5, metavar="S", help="--tui: seconds between redraws")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="model for the window's Recording tab")


def main(args: argparse.Namespace) -> int:
    import contextlib
    import sys
    import threading

    from edge_ser.app.config import load_config
    from edge_ser.monitor.client import MonitorClient
    from edge_ser.monitor.devices import DeviceBoard

    overrides: dict[str, Any] = {key: getattr(args, dest) for dest, key in OVERRIDES.items()
                                 if getattr(args, dest) is not None}
    settings = load_config(args.config, overrides).mqtt.settings
    client = MonitorClient(settings, DeviceBoard(settings.prefix))
    client.start()
    try:
        if args.tui:
            from edge_ser.monitor.terminal import run_terminal

            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how one leaves the view
                run_terminal(client.board.snapshot, threading.Event(), interval=args.interval,
                             send=client.send_command, keys=sys.stdin)
        else:
            from edge_ser.monitor.recording import RecordingAnalyser
            from edge_ser.monitor.window import run_window

            run_window(client, lambda: RecordingAnalyser(args.model))
    finally:
        client.stop()
    return 0
