"""`edge-ser unregister`: remove a device's entities from Home Assistant.

Publishes an empty retained payload on each of the device's discovery topics, which HA reads as
"delete this entity" and the broker as "forget the retained config". It connects with the device
profile's [mqtt] settings, like the daemon. Stop the daemon (or set `mqtt.discovery = false`) first:
a running daemon announces its entities again whenever it or Home Assistant reconnects.
"""

from __future__ import annotations

import argparse
from typing import Any

OVERRIDES = {"device_id": "device.id", "mqtt_host": "mqtt.host", "mqtt_port": "mqtt.port"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="device profile (TOML): device.id and the [mqtt] settings")
    p.add_argument("--device-id", metavar="ID", help="the device to remove (default: the profile's device.id)")
    p.add_argument("--mqtt-host", metavar="HOST")
    p.add_argument("--mqtt-port", type=int, metavar="PORT")


def main(args: argparse.Namespace) -> int:
    from edge_ser.app.config import load_config
    from edge_ser.mqtt.discovery import unregister

    overrides: dict[str, Any] = {key: getattr(args, dest) for dest, key in OVERRIDES.items()
                                 if getattr(args, dest) is not None}
    cfg = load_config(args.config, overrides)
    settings = cfg.mqtt.settings
    for topic in unregister(settings):
        print(f"removed {topic}")
    print(f"edge-ser: {settings.prefix}/{settings.device_id} is no longer announced to Home Assistant "
          f"(stop its daemon first, or it announces itself again)")
    return 0
