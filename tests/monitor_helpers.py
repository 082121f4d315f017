"""Real payloads for monitor tests: built with the daemon's own protocol builders, so the monitor is
tested against exactly what devices publish."""

from __future__ import annotations

import json
import time

from edge_ser.protocol.payloads import make_event, make_state

LABELS = ("neutral", "happy", "sad", "angry")


def probabilities(top: str, p: float = 0.7) -> dict[str, float]:
    rest = (1.0 - p) / (len(LABELS) - 1)
    return {label: (p if label == top else rest) for label in LABELS}


def state_payload(device: str, emotion: str, *, paused: bool = False, p: float = 0.7) -> str:
    return json.dumps(make_state(device_id=device, emotion=emotion, confidence=p,
                                 probabilities=probabilities(emotion, p), listening=not paused, paused=paused,
                                 model_name="test", model_version="1.0", timestamp=time.time()))


def event_payload(device: str, seq: int, label: str, *, p: float = 0.8, event_id: str | None = None) -> str:
    now = time.time()
    return json.dumps(make_event(device_id=device, seq=seq, start=now - 1.5, end=now, label=label,
                                 probabilities=probabilities(label, p), windows=3, model_name="test",
                                 model_version="1.0", event_id=event_id))
