"""Home Assistant MQTT discovery payloads for one edge-ser device.

Two entities under one HA device: a ``sensor`` showing the current smoothed emotion (with the
whole state JSON as attributes), and an ``event`` entity that fires once per utterance. Both
follow ``<base>/status`` for availability, so HA greys them out when the last will fires.
The publisher sends these retained, on every connect and whenever HA announces ``online`` on
``<discovery_prefix>/status`` (HA forgets non-retained discovery when it restarts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from edge_ser import __version__
from edge_ser.recognise.labelling import UNCERTAIN

# The event entity expects a JSON object with an "event_type" key; the other keys become the
# event's attributes. Only a few useful fields are passed: probabilities etc. stay in the event.
_EVENT_VALUE_TEMPLATE = (
    "{{ {'event_type': value_json.label, 'confidence': value_json.confidence, "
    "'event_id': value_json.event_id, 'start': value_json.start, 'end': value_json.end} | to_json }}"
)


def node_id(device_id: str) -> str:
    """HA allows only ``[a-zA-Z0-9_-]`` in the node-id part of a discovery topic."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", device_id)


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
    node = node_id(device_id)
    kinds = list(dict.fromkeys([*labels, *groups, UNCERTAIN]))
    availability = {
        "availability_topic": f"{base_topic}/status",
        "payload_available": "online",
        "payload_not_available": "offline",
    }
    device = {
        "identifiers": [f"edge-ser_{node}"],
        "name": f"edge-ser {device_id}",
        "manufacturer": "edge-ser",
        "model": f"edge-ser ({model_name} {model_version})",
        "sw_version": __version__,
    }
    origin = {"name": "edge-ser", "sw_version": __version__}
    sensor = {
        "name": "Emotion",
        "unique_id": f"{node}_emotion",
        "state_topic": f"{base_topic}/state",
        # A null emotion renders "None", which the MQTT sensor maps to "unknown".
        "value_template": "{{ value_json.emotion }}",
        "json_attributes_topic": f"{base_topic}/state",
        "device_class": "enum",
        "options": kinds,
        "icon": "mdi:emoticon-outline",
        "qos": 1,
        **availability,
        "device": device,
        "origin": origin,
    }
    event = {
        "name": "Utterance",
        "unique_id": f"{node}_utterance",
        "state_topic": f"{base_topic}/event",
        "event_types": kinds,
        "value_template": _EVENT_VALUE_TEMPLATE,
        "icon": "mdi:account-voice",
        "qos": 1,
        **availability,
        "device": device,
        "origin": origin,
    }
    return [
        (f"{discovery_prefix}/sensor/{node}/emotion/config", sensor),
        (f"{discovery_prefix}/event/{node}/utterance/config", event),
    ]
