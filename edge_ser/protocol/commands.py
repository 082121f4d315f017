"""Commands a device accepts on ``<base>/cmd``: names, aliases, and the payload parser.

Parsing is apart from the MQTT client so the daemon, the monitor and the tests agree on what a
valid command is, and so a fuzzer can hammer it without a broker.
"""

from __future__ import annotations

from typing import Any

from edge_ser.protocol.payloads import decode_json_object

# Largest ``cmd`` payload read at all. The longest valid command with a long id is ~100 bytes; the
# bound is checked before decoding, so a hostile client cannot make the MQTT thread parse megabytes
# (mosquitto's own default limit is 256 MB).
MAX_COMMAND_BYTES = 1024

# Accepted command names and the canonical command each stands for. The aliases follow the
# vocabulary of voice-assistant satellites ("mute") so a Home Assistant button can send either.
COMMAND_ALIASES: dict[str, str] = {
    "pause": "pause",
    "mute": "pause",
    "resume": "resume",
    "unmute": "resume",
    "status": "status",
    # A new person in front of the device (the next visitor at a kiosk): forget the voice statistics.
    "reset_adaptation": "reset_adaptation",
}


class CommandError(ValueError):
    """A command payload that cannot be executed; carries what could be read of it for the reply."""

    def __init__(self, message: str, *, cmd_id: str | int | None = None, command: str | None = None):
        super().__init__(message)
        self.cmd_id = cmd_id
        self.command = command


def parse_command(payload: bytes | bytearray) -> dict[str, Any]:
    """Decode a ``<base>/cmd`` payload into ``{"command": canonical, "id": ...}``.

    Raises ``CommandError`` with a message fit to send back to the sender, plus the request's id
    and command name when they could be read, so the error reply can still be correlated. The checks mirror
    ``schemas/cmd.json`` by hand because jsonschema is a development dependency only.
    Unknown fields are refused rather than ignored so that a typo ("comand") is answered with an
    error instead of doing nothing silently.
    """
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandError(f"payload is {len(payload)} bytes; commands are at most {MAX_COMMAND_BYTES} bytes")
    try:
        data = decode_json_object(bytes(payload))
    except ValueError as exc:
        raise CommandError(f"payload is {exc}") from None
    except RecursionError:  # `[[[[…` nested deeper than the JSON decoder's recursion limit
        raise CommandError("payload is nested too deeply to be a command") from None
    cmd_id = data.get("id")
    if cmd_id is not None and (isinstance(cmd_id, bool) or not isinstance(cmd_id, str | int)):
        raise CommandError("'id' must be a string or an integer")
    command = data.get("command")
    name = command if isinstance(command, str) else None  # a list or object is unhashable: never a name
    unknown = sorted(set(data) - {"command", "id"})
    if unknown:
        raise CommandError(f"unknown field(s) {unknown}; allowed: command, id", cmd_id=cmd_id, command=name)
    if name is None or name not in COMMAND_ALIASES:
        raise CommandError(
            f"unknown command {command!r}; expected one of {sorted(COMMAND_ALIASES)}", cmd_id=cmd_id, command=name
        )
    return {"command": COMMAND_ALIASES[name], "id": cmd_id}
