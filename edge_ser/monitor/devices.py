"""The devices a monitor sees under one MQTT prefix, built from their status, state, event and
command-result messages.

Plain Python with no MQTT and no GUI, so the Tk window and the terminal view show the same thing
and tests can feed it real broker messages without a display. Messages arrive on the MQTT
network thread and views read from theirs: every access goes through one lock, and views get
copies (``snapshot``), never live objects.

A payload that does not parse is not allowed to crash the monitor or blank a device: it is
ignored, logged and kept in ``warnings`` so the views can show it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from edge_ser.protocol.payloads import CMD_RESULT_SCHEMA, EVENT_SCHEMA, STATE_SCHEMA, decode_json_object

LOGGER = logging.getLogger("edge_ser.monitor")

# Enough history for a timeline that scrolls over minutes of conversation, small enough to redraw.
TIMELINE_EVENTS = 50
WARNINGS_KEPT = 20
FORGET_OFFLINE_S = 300.0

# topic suffix after <prefix>/<device>/ -> kind of message
SUFFIXES = {"status": "status", "state": "state", "event": "event", "cmd/result": "result"}


@dataclass(frozen=True)
class Utterance:
    """One event, as much of it as the views show."""

    event_id: str
    seq: int
    start: str  # ISO-8601 UTC, as published
    duration_s: float
    label: str
    confidence: float


@dataclass
class Device:
    """What is known about one device; views receive copies."""

    device_id: str
    online: bool | None = None  # None: no status seen yet
    emotion: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    listening: bool | None = None
    paused: bool | None = None
    model: str | None = None
    timeline: deque[Utterance] = field(default_factory=lambda: deque(maxlen=TIMELINE_EVENTS))
    last_result: dict[str, Any] | None = None
    updated: float = 0.0  # monotonic time of the last message: an offline device is forgotten after a while


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of the board for one redraw."""

    connected: bool
    connection_error: str | None
    devices: list[Device]
    warnings: list[str]


class DeviceBoard:
    """Devices under ``prefix``, updated by ``handle(topic, payload)``.

    A device appears with its first message. One that goes offline stays on the board, shown
    offline, for ``forget_offline_s`` (an operator should see that a kiosk dropped out, not just
    miss it), then disappears; it disappears at once when its retained status is cleared (an empty
    retained payload: the MQTT way to say a device was decommissioned).
    """

    def __init__(self, prefix: str, forget_offline_s: float = FORGET_OFFLINE_S) -> None:
        self.prefix = prefix
        self.forget_offline_s = forget_offline_s
        self._lock = threading.Lock()
        self._devices: dict[str, Device] = {}
        self._warnings: deque[str] = deque(maxlen=WARNINGS_KEPT)
        self._connected = False
        self._connection_error: str | None = None
        self._seen_events: dict[str, set[str]] = {}

    def topics(self) -> list[str]:
        """Subscriptions covering every device under the prefix."""
        return [f"{self.prefix}/+/{suffix}" for suffix in SUFFIXES]

    def set_connected(self, connected: bool, error: str | None = None) -> None:
        with self._lock:
            self._connected = connected
            self._connection_error = None if connected else error

    def handle(self, topic: str, payload: bytes) -> None:
        """Apply one message; anything malformed becomes a warning, never an exception."""
        parsed = self._split(topic)
        if parsed is None:
            return
        device_id, kind = parsed
        try:
            if kind == "status":
                self._status(device_id, payload)
            else:
                self._json(device_id, kind, _decode(payload))
        except _Malformed as exc:
            self.warn(f"{topic}: ignored malformed payload: {exc}")

    def warn(self, message: str) -> None:
        LOGGER.warning("%s", message)
        with self._lock:
            self._warnings.append(message)

    def snapshot(self) -> Snapshot:
        with self._lock:
            stale = time.monotonic() - self.forget_offline_s
            for gone in [k for k, d in self._devices.items() if d.online is False and d.updated < stale]:
                del self._devices[gone]
                self._seen_events.pop(gone, None)
            devices = [replace(d, probabilities=dict(d.probabilities), timeline=deque(d.timeline, TIMELINE_EVENTS))
                       for _, d in sorted(self._devices.items())]
            return Snapshot(self._connected, self._connection_error, devices, list(self._warnings))

    # ------------------------------------------------------------------ per message kind

    def _split(self, topic: str) -> tuple[str, str] | None:
        head = self.prefix + "/"
        if not topic.startswith(head):
            return None
        device_id, _, suffix = topic[len(head):].partition("/")
        kind = SUFFIXES.get(suffix)
        return (device_id, kind) if device_id and kind else None

    def _device(self, device_id: str) -> Device:
        device = self._devices.get(device_id)
        if device is None:
            device = self._devices[device_id] = Device(device_id)
        device.updated = time.monotonic()
        return device

    def _status(self, device_id: str, payload: bytes) -> None:
        if payload == b"":
            with self._lock:
                self._devices.pop(device_id, None)
                self._seen_events.pop(device_id, None)
            return
        if payload not in (b"online", b"offline"):
            raise _Malformed(f"status must be 'online' or 'offline', got {payload[:40]!r}")
        with self._lock:
            self._device(device_id).online = payload == b"online"

    def _json(self, device_id: str, kind: str, data: dict[str, Any]) -> None:
        if kind == "state":
            _expect_schema(data, STATE_SCHEMA)
            probabilities = _probabilities(data.get("probabilities"))
            emotion, confidence = _optional_str(data, "emotion"), _optional_float(data, "confidence")
            listening, paused = _bool(data, "listening"), _bool(data, "paused")
            with self._lock:
                d = self._device(device_id)
                d.emotion, d.confidence, d.probabilities = emotion, confidence, probabilities
                d.listening, d.paused = listening, paused
                d.model = _model(data)
        elif kind == "event":
            _expect_schema(data, EVENT_SCHEMA)
            utterance = _utterance(data)
            probabilities = _probabilities(data.get("probabilities"))
            with self._lock:
                d = self._device(device_id)
                seen = self._seen_events.setdefault(device_id, set())
                if utterance.event_id in seen:  # delivery is at-least-once: drop the repeat
                    return
                d.timeline.append(utterance)
                seen.add(utterance.event_id)
                if len(seen) > 4 * TIMELINE_EVENTS:  # bounded: remember what the timeline still shows
                    seen.intersection_update(u.event_id for u in d.timeline)
                # The newest utterance is what somebody just said: show it until the state says otherwise.
                d.emotion, d.confidence, d.probabilities = utterance.label, utterance.confidence, probabilities
                d.model = _model(data)
        else:
            _expect_schema(data, CMD_RESULT_SCHEMA)
            with self._lock:
                d = self._device(device_id)
                d.last_result = data
                state = data.get("state")
                if isinstance(state, dict) and isinstance(state.get("paused"), bool):
                    d.paused = state["paused"]


class _Malformed(ValueError):
    pass


def _decode(payload: bytes) -> dict[str, Any]:
    try:
        return decode_json_object(payload)
    except ValueError as exc:
        raise _Malformed(str(exc)) from None


def _expect_schema(data: dict[str, Any], schema: str) -> None:
    if data.get("schema") != schema:
        raise _Malformed(f"schema {data.get('schema')!r}, expected {schema!r}")


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Malformed(f"{key} must be a number, got {value!r}")
    return float(value)


def _probabilities(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise _Malformed("probabilities must be an object")
    return {str(k): _number(v, f"probabilities.{k}") for k, v in value.items()}


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _Malformed(f"{key} must be a string or null")
    return value


def _optional_float(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    return None if value is None else _number(value, key)


def _bool(data: dict[str, Any], key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise _Malformed(f"{key} must be true or false")
    return value


def _model(data: dict[str, Any]) -> str | None:
    model = data.get("model")
    if isinstance(model, dict) and isinstance(model.get("name"), str):
        return f"{model['name']} {model.get('version', '')}".strip()
    return None


def _utterance(data: dict[str, Any]) -> Utterance:
    for key in ("event_id", "label", "start"):
        if not isinstance(data.get(key), str):
            raise _Malformed(f"{key} must be a string")
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise _Malformed("seq must be an integer")
    return Utterance(data["event_id"], seq, data["start"], _number(data.get("duration_s"), "duration_s"),
                     data["label"], _number(data.get("confidence"), "confidence"))
