"""The monitor's MQTT client: subscribes to every device under the prefix, feeds a DeviceBoard,
and sends commands.

Unlike the daemon's publisher it holds no queue that must stay ordered across connections, so
paho's own reconnect (with the settings' backoff) is enough; what matters is that the board
knows whether it is connected, so the views can say so, and that a reconnect subscribes again
(clean session), which brings every retained status and state back.
"""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_ser.errors import ConfigError
from edge_ser.monitor.devices import DeviceBoard
from edge_ser.mqtt.connect import Credentials, refused_hint
from edge_ser.mqtt.settings import MqttSettings
from edge_ser.protocol.commands import COMMAND_ALIASES

LOGGER = logging.getLogger("edge_ser.monitor")

# The canonical commands a device documents (aliases stand for these), in button order.
COMMANDS = tuple(dict.fromkeys(COMMAND_ALIASES.values()))


class MonitorClient:
    """One paho client for one board. ``start`` returns at once; everything else is callbacks."""

    def __init__(self, settings: MqttSettings, board: DeviceBoard) -> None:
        self.settings = settings
        self.board = board
        self._ids = itertools.count(1)
        self._credentials: Credentials | None = None
        self._stopping = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"edge-ser-monitor-{uuid.uuid4().hex[:8]}",  # several monitors may watch one broker
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        # paho counts whole seconds; a sub-second minimum would mean hammering a broker that is down.
        low = max(1, round(settings.reconnect_min_s))
        self.client.reconnect_delay_set(low, max(low, round(settings.reconnect_max_s)))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_connect_fail = self._on_connect_fail

    def start(self) -> None:
        """Read credentials (``ConfigError`` for local mistakes) and connect in the background."""
        self._credentials = Credentials(self.settings)
        self._credentials.apply(self.client)
        self.board.set_connected(False, f"connecting to {self.settings.host}:{self.settings.port}")
        try:
            self.client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive)
        except ValueError as exc:
            raise ConfigError(f"MQTT: {exc}") from None
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def send_command(self, device_id: str, command: str) -> str:
        """Publish ``{"command": ..., "id": ...}`` to the device; returns the id its result echoes."""
        if command not in COMMAND_ALIASES:
            raise ValueError(f"unknown command {command!r}")
        cmd_id = f"monitor-{next(self._ids)}"
        payload = json.dumps({"command": command, "id": cmd_id})
        self.client.publish(f"{self.settings.prefix}/{device_id}/cmd", payload, qos=1)
        return cmd_id

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        where = f"{self.settings.host}:{self.settings.port}"
        if reason.is_failure:
            message = f"broker {where} refused the connection: {reason} ({refused_hint(self.settings)})"
            LOGGER.error("%s", message)
            self.board.set_connected(False, message)
            return
        LOGGER.info("monitor connected to %s", where)
        self.board.set_connected(True)
        client.subscribe([(topic, 1) for topic in self.board.topics()])

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        if self._stopping:
            return
        message = f"disconnected from {self.settings.host}:{self.settings.port} ({reason}); reconnecting"
        LOGGER.warning("%s", message)
        self.board.set_connected(False, message)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        message = f"cannot connect to {self.settings.host}:{self.settings.port}; retrying"
        LOGGER.debug("%s", message)
        self.board.set_connected(False, message)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.board.handle(message.topic, bytes(message.payload))

