"""Payload builders against the JSON Schemas that document them (and the schemas against bad data)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from edge_ser.protocol.commands import CommandError, parse_command
from edge_ser.protocol.payloads import iso_utc, load_schema, make_cmd_result, make_event, make_state, new_event_id

LABELS = ["angry", "happy", "neutral", "sad"]
PROBS = {"angry": 0.1, "happy": 0.6, "neutral": 0.2, "sad": 0.1}


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _event(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        device_id="kitchen", seq=7, start=1_700_000_000.25, end=1_700_000_002.0, label="happy",
        probabilities=PROBS, windows=5, model_name="ser-tiny", model_version="1.2.0",
    )  # fmt: skip
    kwargs.update(overrides)
    return make_event(**kwargs)


def _state(**overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = dict(
        device_id="kitchen", emotion="happy", confidence=0.6, probabilities=PROBS, listening=True,
        paused=False, model_name="ser-tiny", model_version="1.2.0", timestamp=1_700_000_002.5,
    )  # fmt: skip
    kwargs.update(overrides)
    return make_state(**kwargs)


def test_event_matches_schema_and_fields() -> None:
    event = _event(groups={"positive": 0.6, "negative": 0.2})
    _validator("event").validate(event)
    assert event["schema"] == "edge-ser/event/1"
    assert event["start"] == "2023-11-14T22:13:20.250Z"
    assert event["duration_s"] == pytest.approx(1.75)
    assert event["confidence"] == pytest.approx(0.6)
    assert event["model"] == {"name": "ser-tiny", "version": "1.2.0"}
    assert json.loads(json.dumps(event)) == event  # plain JSON types only


def test_a_degraded_spool_is_said_in_the_state_and_is_optional_in_the_schema() -> None:
    fine, lost = _state(), _state(spool_degraded="cannot write the event spool /x: disk full", spool_dropped=3)
    assert fine["spool"] == {"pending": 0, "dropped": 0, "degraded": False, "error": None}
    assert lost["spool"] == {"pending": 0, "dropped": 3, "degraded": True,
                             "error": "cannot write the event spool /x: disk full"}
    for state in (fine, lost):
        _validator("state").validate(state)
    older = copy.deepcopy(fine)
    del older["spool"]["degraded"], older["spool"]["error"]
    _validator("state").validate(older)  # a state from before the field is still valid


def test_event_without_groups_omits_the_key() -> None:
    event = _event()
    assert "groups" not in event
    _validator("event").validate(event)


def test_event_ids_are_unique_uuid4() -> None:
    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    _validator("event").validate(_event(event_id=ids.pop()))


def test_event_label_must_be_a_class() -> None:
    with pytest.raises(ValueError, match="surprised"):
        _event(label="surprised")


def test_event_label_may_be_a_group_or_uncertain_with_its_confidence() -> None:
    grouped = _event(label="positive", confidence=0.6, groups={"positive": 0.6, "negative": 0.4})
    unsure = _event(label="uncertain", confidence=0.31)
    for event in (grouped, unsure):
        _validator("event").validate(event)
    assert (grouped["label"], unsure["label"], unsure["confidence"]) == ("positive", "uncertain", 0.31)
    with pytest.raises(ValueError, match="give its confidence"):
        _event(label="uncertain")


@pytest.mark.parametrize(
    ("path", "bad_value"),
    [
        (("schema",), "edge-ser/event/2"),
        (("event_id",), "not-a-uuid"),
        (("seq",), -1),
        (("start",), "2023-11-14 22:13:20"),
        (("confidence",), 1.5),
        (("probabilities", "happy"), "0.6"),
        (("windows",), 0),
        (("model", "version"), None),
    ],
)
def test_event_schema_rejects_bad_values(path: tuple[str, ...], bad_value: Any) -> None:
    event = copy.deepcopy(_event())
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad_value
    with pytest.raises(jsonschema.ValidationError):
        _validator("event").validate(event)


def test_event_schema_rejects_missing_and_extra_fields() -> None:
    event = _event()
    del event["label"]
    with pytest.raises(jsonschema.ValidationError, match="label"):
        _validator("event").validate(event)
    with pytest.raises(jsonschema.ValidationError):
        _validator("event").validate({**_event(), "surprise": 1})


def test_state_matches_schema_including_nothing_heard_yet() -> None:
    validator = _validator("state")
    state = _state(source_ok=False, source_error="mic unplugged", overflows=3, spool_pending=4, spool_dropped=1)
    validator.validate(state)
    assert state["source"] == {"ok": False, "error": "mic unplugged", "overflows": 3}
    assert state["spool"] == {"pending": 4, "dropped": 1, "degraded": False, "error": None}
    idle = _state(emotion=None, confidence=None, probabilities={}, listening=False, paused=True)
    validator.validate(idle)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**idle, "listening": "yes"})


@pytest.mark.parametrize(
    "command",
    [{"command": "pause"}, {"command": "mute", "id": "abc"}, {"command": "resume", "id": 3}, {"command": "status"}],
)
def test_valid_commands_pass_schema_and_parser(command: dict[str, Any]) -> None:
    _validator("cmd").validate(command)
    parsed = parse_command(json.dumps(command).encode())
    assert parsed["command"] in {"pause", "resume", "status"}
    assert parsed["id"] == command.get("id")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"command": "dance"}', "unknown command"),
        (b'{"command": 5}', "unknown command"),
        (b'{"comand": "pause"}', "unknown field"),
        (b'{"command": "pause", "id": [1]}', "'id'"),
    ],
)
def test_invalid_commands_fail_schema_and_parser(payload: bytes, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_command(payload)
    try:
        document = json.loads(payload)
    except ValueError:
        return  # not JSON at all: nothing for the schema to judge
    with pytest.raises(jsonschema.ValidationError):
        _validator("cmd").validate(document)


def test_command_error_keeps_id_for_the_reply() -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(b'{"command": "dance", "id": "r1"}')
    assert (caught.value.cmd_id, caught.value.command) == ("r1", "dance")


def test_cmd_results_match_schema() -> None:
    validator = _validator("cmd_result")
    validator.validate(make_cmd_result(command="pause", ok=True, cmd_id="r1", state=_state(paused=True)))
    validator.validate(make_cmd_result(command=None, ok=False, error="payload is not valid JSON"))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(make_cmd_result(command="pause", ok=False))  # a failure must say why


def test_iso_utc_format() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1.9999) == "1970-01-01T00:00:01.999Z"


def test_load_schema_names_what_exists() -> None:
    with pytest.raises(FileNotFoundError, match="cmd_result"):
        load_schema("nope")


def test_event_stream_offsets_are_optional_and_come_as_a_pair() -> None:
    event = _event(stream_start=12.3456, stream_end=14.0)
    _validator("event").validate(event)
    assert (event["stream_start"], event["stream_end"]) == (12.346, 14.0)
    assert "stream_start" not in _event()  # an old-style event is still valid: consumers see no change
    half = {k: v for k, v in event.items() if k != "stream_end"}
    with pytest.raises(jsonschema.ValidationError, match="stream_end"):
        _validator("event").validate(half)


SEVEN_LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]  # the bundled model's
ROBOT_GROUPS = ["negative", "neutral", "positive"]  # firmware_config/robot.toml


@pytest.mark.parametrize(("groups", "offsets"), [(ROBOT_GROUPS, False), ([], True)],
                         ids=["grouped-mic", "file-with-offsets"])
def test_the_widest_events_a_valid_config_allows_fit_in_512_bytes(groups: list[str], offsets: bool) -> None:
    """Every number at its widest, the longest device id config validation lets through, the
    bundled model's labels: the two shapes the daemon sends (it leaves the stream offsets out of
    grouped 7-class events, tests/test_daemon_inprocess.py) stay within the MQTT contract's 512 bytes."""
    noisy = 1 / 7  # 0.14285714285714285: the builder, not the caller, shortens it
    event = _event(device_id="d" * 16, seq=9_999_999_999, windows=99_999, start=4_102_444_799.0,
                   end=4_102_444_799.0 + 999.999, probabilities=dict.fromkeys(SEVEN_LABELS, noisy),
                   label=groups[0] if groups else "surprised", confidence=noisy,
                   groups=dict.fromkeys(groups, noisy) or None,
                   stream_start=9_999_999.999 if offsets else None, stream_end=9_999_999.999 if offsets else None,
                   model_name="edge-ser-7class", model_version="3.0.0")
    _validator("event").validate(event)
    assert event["confidence"] == 0.143 and set(event["probabilities"].values()) == {0.143}
    assert len(json.dumps(event, separators=(",", ":")).encode()) <= 512  # as MqttPublisher sends it
