"""JSON payloads edge-ser publishes (events, state, command results) and their JSON Schemas.

The builders live here, apart from the MQTT client, so that the daemon, the ``predict`` JSON-lines
sink and the tests all produce byte-for-byte the same shapes. Every payload carries a ``schema``
field naming its version: consumers dispatch on it, and a breaking change gets a new number
rather than silently changing meaning. The JSON Schema files in ``edge_ser/protocol/schemas/`` are the
documentation of record; ``tests/test_events_schema.py`` keeps the builders and schemas in step.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_ser.recognise.labelling import PROBABILITY_DECIMALS, UNCERTAIN

EVENT_SCHEMA = "edge-ser/event/1"
STATE_SCHEMA = "edge-ser/state/1"
CMD_RESULT_SCHEMA = "edge-ser/cmd_result/1"

# The MQTT contract's bound on one event as sent (compact JSON, UTF-8): small enough for the most
# constrained broker and client buffers in a fleet, and for a fleet consumer to size its queues.
MAX_EVENT_BYTES = 512

_SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def new_event_id() -> str:
    """A random UUID4 string: lets at-least-once consumers drop duplicates without coordination."""
    return str(uuid.uuid4())


def iso_utc(t: float) -> str:
    """Format a POSIX time as ISO-8601 UTC with milliseconds and a ``Z`` suffix.

    One fixed format (rather than ``isoformat()``'s variable precision) keeps payloads sortable as
    strings and matches the pattern in the schemas.
    """
    dt = datetime.fromtimestamp(t, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def compact_json(payload: Mapping[str, Any]) -> str:
    """The one wire encoding of a payload: no spaces, strict JSON (NaN is a ValueError, not a token
    a consumer's parser may reject); what ``MAX_EVENT_BYTES`` is measured on."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)


def _probability(p: float) -> float:
    return round(float(p), PROBABILITY_DECIMALS)


def _model_block(model_name: str, model_version: str) -> dict[str, str]:
    return {"name": model_name, "version": model_version}


def make_event(
    *,
    device_id: str,
    seq: int,
    start: float,
    end: float,
    label: str,
    probabilities: Mapping[str, float],
    windows: int,
    model_name: str,
    model_version: str,
    confidence: float | None = None,
    groups: Mapping[str, float] | None = None,
    event_id: str | None = None,
    stream_start: float | None = None,
    stream_end: float | None = None,
) -> dict[str, Any]:
    """Build one utterance event.

    ``start`` and ``end`` are POSIX times (seconds). ``stream_start``/``stream_end`` are seconds
    from the start of the source: a file read faster than real time has wall times that crowd
    together (and overlap between utterances), so only these place the utterance in the recording;
    they are left out when not given. ``label`` is a model label, a group name (with ``groups``) or
    "uncertain" (below the confidence threshold); ``confidence`` defaults to the
    probability of a model label, and must be given for the other two. ``seq`` is owned by the
    caller (the daemon), which knows what "per device" means across restarts.
    """
    known = [*probabilities, *(groups or {}), UNCERTAIN]
    if label not in known:
        raise ValueError(f"label {label!r} is none of {known}")
    if confidence is None and label not in probabilities:
        raise ValueError(f"label {label!r} is not a model label: give its confidence")
    event: dict[str, Any] = {
        "schema": EVENT_SCHEMA,
        "event_id": event_id or new_event_id(),
        "device_id": device_id,
        "seq": int(seq),
        "start": iso_utc(start),
        "end": iso_utc(end),
        "duration_s": round(max(0.0, end - start), 3),
        "label": label,
        "confidence": _probability(probabilities[label] if confidence is None else confidence),
        "probabilities": {k: _probability(v) for k, v in probabilities.items()},
        "windows": int(windows),
        "model": _model_block(model_name, model_version),
    }
    if groups:
        event["groups"] = {k: _probability(v) for k, v in groups.items()}
    if stream_start is not None and stream_end is not None:
        event["stream_start"] = round(max(0.0, stream_start), 3)
        event["stream_end"] = round(max(0.0, stream_end), 3)
    return event


def largest_event_bytes(
    *,
    device_id: str,
    labels: Sequence[str],
    groups: Sequence[str],
    model_name: str,
    model_version: str,
    stream_offsets: bool,
) -> int:
    """The size of the largest event these names can produce, as sent: every number at its widest.

    The names are the only part of an event a configuration can make long; the rest is bounded by
    the builder (three-decimal probabilities, millisecond times, a UUID). So the daemon can check
    ``MAX_EVENT_BYTES`` once at start instead of finding an oversized event in the field.
    """
    names = [*labels, *groups, UNCERTAIN]
    widest = 0.111  # "0.111": the longest a rounded probability prints
    event = make_event(
        device_id=device_id,
        seq=9_999_999_999,  # ten digits: centuries of utterances
        start=4_102_444_799.0,  # 2099-12-31T23:59:59Z
        end=4_102_444_799.0 + 999.999,
        label=max(names, key=lambda name: len(compact_json({"": name}))),
        confidence=widest,
        probabilities=dict.fromkeys(labels, widest),
        windows=99_999,
        model_name=model_name,
        model_version=model_version,
        groups=dict.fromkeys(groups, widest),
        stream_start=9_999_999.999 if stream_offsets else None,  # 115 days into a stream
        stream_end=9_999_999.999 if stream_offsets else None,
    )
    return len(compact_json(event).encode())


def make_state(
    *,
    device_id: str,
    emotion: str | None,
    confidence: float | None,
    probabilities: Mapping[str, float],
    listening: bool,
    paused: bool,
    model_name: str,
    model_version: str,
    source_ok: bool = True,
    source_error: str | None = None,
    overflows: int = 0,
    spool_pending: int = 0,
    spool_dropped: int = 0,
    spool_degraded: str | None = None,
    adaptation: Mapping[str, float] | None = None,
    timestamp: float,
) -> dict[str, Any]:
    """Build the retained device state: what a dashboard shows when it connects, without history.

    ``spool_degraded`` is why events are being lost right now (a spool that cannot write, or one at
    its bound), None when they are not: ``spool.degraded`` is then false and ``spool.error`` null.
    """
    state = {
        "schema": STATE_SCHEMA,
        "device_id": device_id,
        "emotion": emotion,
        "confidence": None if confidence is None else float(confidence),
        "probabilities": {k: float(v) for k, v in probabilities.items()},
        "listening": bool(listening),
        "paused": bool(paused),
        "timestamp": iso_utc(timestamp),
        "source": {"ok": bool(source_ok), "error": source_error, "overflows": int(overflows)},
        "spool": {"pending": int(spool_pending), "dropped": int(spool_dropped),
                  "degraded": spool_degraded is not None, "error": spool_degraded},
        "model": _model_block(model_name, model_version),
    }
    if adaptation is not None:
        state["adaptation"] = {k: float(v) for k, v in adaptation.items()}
    return state


def make_cmd_result(
    *,
    command: str | None,
    ok: bool,
    error: str | None = None,
    cmd_id: str | int | None = None,
    state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the answer published on ``<base>/cmd/result`` (``id`` echoes the request's, if any)."""
    result: dict[str, Any] = {
        "schema": CMD_RESULT_SCHEMA,
        "id": cmd_id,
        "command": command,
        "ok": bool(ok),
        "error": error,
    }
    if state is not None:
        result["state"] = dict(state)
    return result


def decode_json_object(payload: bytes) -> dict[str, Any]:
    """A payload that must be one JSON object, or ValueError saying in a few words why it is not:
    the one decoder for commands the daemon receives and messages the monitor reads."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data


def load_schema(name: str) -> dict[str, Any]:
    """Load ``edge_ser/protocol/schemas/<name>.json`` (event, state, cmd, cmd_result)."""
    path = _SCHEMA_DIR / f"{name}.json"
    if not path.is_file():
        available = sorted(p.stem for p in _SCHEMA_DIR.glob("*.json"))
        raise FileNotFoundError(f"no schema {name!r} in {_SCHEMA_DIR}; available: {available}")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema
