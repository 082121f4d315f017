"""Home Assistant MQTT discovery for one edge-ser device, and its removal.

Entities under one HA device:

* ``sensor`` Emotion: the current smoothed emotion, with the whole state JSON as attributes;
* ``event`` Utterance: fires once per utterance;
* ``switch`` Mute: sends the existing ``pause``/``resume`` commands (by their ``mute``/``unmute``
  aliases) on ``<base>/cmd`` and shows ``paused`` from the state, so it follows the device, not
  what HA last sent (the daemon publishes the state at once on pause and resume);
* ``button`` New speaker: sends ``reset_adaptation`` (a model that adapts to its speaker forgets
  the voice statistics; one that does not answers with an error on ``<base>/cmd/result``);
* diagnostics, read from the retained state: ``binary_sensor`` Listening, ``binary_sensor`` Audio
  source (a *problem* sensor: on while the microphone fails), ``sensor`` Spool pending (events
  waiting for the broker) and ``binary_sensor`` Events lost (a *problem* sensor: on while the
  spool cannot keep events, full disk or at its bound, with the reason as its attributes).

All follow ``<base>/status`` for availability, so HA greys them out when the last will fires.
The unique ids and the HA device identifier are made from the base topic (``<prefix>/<device_id>``),
not the device id alone, so two devices with the same id under different prefixes are two HA
devices. The discovery topics keep the device id as their node id: the example broker ACL confines
a device to ``homeassistant/<component>/<username>/#``, and mosquitto substitutes ``%u`` only for a
whole topic level. The publisher sends the configs retained, on every connect
and whenever HA announces ``online`` on ``<discovery_prefix>/status`` (HA forgets non-retained
discovery when it restarts); ``edge-ser unregister`` publishes them empty, which is how HA is told
to remove the entities (and the broker to forget the retained configs).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_ser import __version__
from edge_ser.errors import ConfigError
from edge_ser.mqtt.connect import Credentials, describe_connect_error, refused_hint
from edge_ser.mqtt.settings import MqttSettings
from edge_ser.recognise.labelling import UNCERTAIN

# The event entity expects a JSON object with an "event_type" key; the other keys become the
# event's attributes. Only a few useful fields are passed: probabilities etc. stay in the event.
_EVENT_VALUE_TEMPLATE = (
    "{{ {'event_type': value_json.label, 'confidence': value_json.confidence, "
    "'event_id': value_json.event_id, 'start': value_json.start, 'end': value_json.end} | to_json }}"
)

# (component, object id) of every entity, in the order the configs are sent.
ENTITIES = (("sensor", "emotion"), ("event", "utterance"), ("switch", "mute"), ("button", "new_speaker"),
            ("binary_sensor", "listening"), ("binary_sensor", "source"), ("sensor", "spool_pending"),
            ("binary_sensor", "events_lost"))


def node_id(name: str) -> str:
    """`name` in the characters HA allows in a discovery topic's node-id part and in ids
    (``[a-zA-Z0-9_-]``): ``hall.1`` becomes ``hall_1``, ``edge-ser/hall.1`` ``edge-ser_hall_1``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def discovery_topics(device_id: str, discovery_prefix: str) -> list[str]:
    """The retained config topics of one device's entities, in the order they are sent."""
    node = node_id(device_id)
    return [f"{discovery_prefix}/{component}/{node}/{object_id}/config" for component, object_id in ENTITIES]


def discovery_messages(
    *,
    base_topic: str,
    device_id: str,
    discovery_prefix: str,
    labels: Sequence[str],
    groups: Sequence[str] = (),
    model_name: str,
    model_version: str,
) -> list[tuple[str, dict[str, Any]]]:
    """Return ``(topic, payload)`` pairs for the retained discovery configs of this device.

    What the device reports as a label is a model label, a group name (when groups are
    configured) or ``"uncertain"`` (below the confidence threshold); HA rejects an enum sensor
    value or an event type it was not told about, so all of them are announced.
    """
    namespace = node_id(base_topic)
    kinds = list(dict.fromkeys([*labels, *groups, UNCERTAIN]))
    state_topic = f"{base_topic}/state"
    common = {
        "availability_topic": f"{base_topic}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "device": {
            "identifiers": [namespace],
            "name": f"edge-ser {device_id}",
            "manufacturer": "edge-ser",
            "model": f"edge-ser ({model_name} {model_version})",
            "sw_version": __version__,
        },
        "origin": {"name": "edge-ser", "sw_version": __version__},
    }
    diagnostic = {"entity_category": "diagnostic", "state_topic": state_topic}
    configs: dict[str, dict[str, Any]] = {
        "emotion": {
            "name": "Emotion",
            "state_topic": state_topic,
            # A null emotion renders "None", which the MQTT sensor maps to "unknown".
            "value_template": "{{ value_json.emotion }}",
            "json_attributes_topic": state_topic,
            "device_class": "enum",
            "options": kinds,
            "icon": "mdi:emoticon-outline",
        },
        "utterance": {
            "name": "Utterance",
            "state_topic": f"{base_topic}/event",
            "event_types": kinds,
            "value_template": _EVENT_VALUE_TEMPLATE,
            "icon": "mdi:account-voice",
        },
        "mute": {
            "name": "Mute",
            "command_topic": f"{base_topic}/cmd",
            "payload_on": json.dumps({"command": "mute"}),
            "payload_off": json.dumps({"command": "unmute"}),
            "state_topic": state_topic,
            "value_template": "{{ 'ON' if value_json.paused else 'OFF' }}",
            "state_on": "ON",
            "state_off": "OFF",
            "icon": "mdi:microphone-off",
        },
        "new_speaker": {
            "name": "New speaker",
            "command_topic": f"{base_topic}/cmd",
            "payload_press": json.dumps({"command": "reset_adaptation"}),
            "icon": "mdi:account-switch",
        },
        "listening": {
            "name": "Listening",
            **diagnostic,
            "value_template": "{{ 'ON' if value_json.listening else 'OFF' }}",
            "icon": "mdi:ear-hearing",
        },
        "source": {
            "name": "Audio source",
            **diagnostic,
            "device_class": "problem",
            "value_template": "{{ 'OFF' if value_json.source.ok else 'ON' }}",
            "json_attributes_topic": state_topic,
            "json_attributes_template": "{{ value_json.source | to_json }}",
        },
        "spool_pending": {
            "name": "Spool pending",
            **diagnostic,
            "value_template": "{{ value_json.spool.pending }}",
            "unit_of_measurement": "events",
            "state_class": "measurement",
            "icon": "mdi:tray-full",
        },
        "events_lost": {
            "name": "Events lost",
            **diagnostic,
            "device_class": "problem",
            "value_template": "{{ 'ON' if value_json.spool.degraded else 'OFF' }}",
            "json_attributes_topic": state_topic,
            "json_attributes_template": "{{ value_json.spool | to_json }}",
        },
    }
    topics = discovery_topics(device_id, discovery_prefix)
    return [(topic, {**configs[object_id], "unique_id": f"{namespace}_{object_id}", **common})
            for topic, (_, object_id) in zip(topics, ENTITIES, strict=True)]


def unregister(settings: MqttSettings, timeout: float = 10.0) -> list[str]:
    """Remove the device from Home Assistant: an empty retained payload on each of its discovery
    topics (HA deletes the entity, the broker forgets the retained config). Returns the topics.

    A one-shot client of its own (not the daemon's publisher): it runs while the daemon is stopped,
    and it must not announce the device ``online`` or touch its spool. Raises ConfigError, in one
    line, when the broker cannot be reached or refuses the login, or does not acknowledge in time.
    """
    topics = discovery_topics(settings.device_id, settings.discovery_prefix)
    credentials = Credentials(settings)  # a bad password file or CA is reported before connecting
    answered = threading.Event()
    refused: list[str] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            refused.append(f"broker refused the connection: {reason} ({refused_hint(settings)})")
        answered.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-ser-unregister-{settings.device_id}",
                         clean_session=True, protocol=mqtt.MQTTv311, reconnect_on_failure=False)
    credentials.apply(client)
    client.on_connect = on_connect
    try:
        client.connect(settings.host, settings.port, settings.keepalive)
    except (OSError, ValueError) as exc:  # socket, DNS and TLS errors, as the publisher reports them
        raise ConfigError(describe_connect_error(exc, settings)) from None
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout
        if not answered.wait(timeout):
            raise ConfigError(f"no answer from the broker at {settings.host}:{settings.port} within {timeout:.0f} s")
        if refused:
            raise ConfigError(refused[0])
        sent = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
        try:
            for info in sent:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        except (RuntimeError, ValueError):  # paho: the connection dropped under the publish
            pass  # reported below as not acknowledged
        if not all(info.is_published() for info in sent):
            raise ConfigError(f"the broker at {settings.host}:{settings.port} did not acknowledge the removal "
                              f"within {timeout:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
    return topics
