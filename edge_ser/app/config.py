"""The device configuration: one TOML file mapped onto validated, frozen dataclasses.

Each stage owns the dataclass of its own settings (GateConfig in recognise.gate, InferenceConfig in
recognise.labelling, MqttSettings in mqtt.settings); this module only maps TOML sections onto them and
checks every value against the field's type, so a typo or a wrong type is refused at start with
the file, the key (`mqtt.port`) and what was expected, instead of surfacing hours later. Unknown
sections and keys are errors for the same reason. Relative paths in the file are taken relative to it.
Command-line flags override file values and are checked the same way.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_ser.app.state_files import device_file
from edge_ser.errors import ConfigError, read_user_file
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.mqtt.settings import MqttSettings
from edge_ser.recognise.gate import GateConfig
from edge_ser.recognise.labelling import InferenceConfig
from edge_ser.recognise.speech_likeness import SpeechCheckConfig

SOURCES = ("mic", "file", "stdin")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("kv", "json")
SPOOL_FILE = "spool.sqlite"  # the shared name before spools were kept per device id; see default_spool_path
CLI = "command line"
MAX_DEVICE_ID_BYTES = 16


@dataclass(frozen=True)
class DeviceConfig:
    id: str = "edge-ser"  # MQTT device id: topics are <mqtt.prefix>/<id>/...

    def __post_init__(self) -> None:
        # The id is a topic level and part of file names in the state directory (app.state_files):
        # a control character (NUL above all) has no place in either.
        if not self.id or any(c in self.id for c in "/+# ") or not self.id.isprintable():
            raise ConfigError(f"device.id: expected a non-empty name without '/', '+', '#', spaces or control "
                              f"characters, got {self.id!r}")
        # Every event carries the id, and an event must fit in 512 bytes (docs/DESIGN.md §7).
        if len(self.id.encode()) > MAX_DEVICE_ID_BYTES:
            raise ConfigError(f"device.id: expected at most {MAX_DEVICE_ID_BYTES} bytes, got "
                              f"{len(self.id.encode())} in {self.id!r}")


@dataclass(frozen=True)
class AudioConfig:
    source: str = "mic"  # "mic", "file" or "stdin"
    device: str | int | None = None  # input device: index, or part of its name; None = system default
    rate: int = 16000  # capture rate tried first; a device that refuses it is opened at its own rate
    channels: int = 1  # channels captured (averaged to mono)
    chunk_ms: int = 100  # audio per read
    file: str | None = None  # WAV for source = "file"
    realtime: bool = True  # file source: play at real-time pace (False: as fast as possible)
    loop: bool = False  # file source: start again at the end
    stdin_rate: int = 16000  # sample rate of raw 16-bit mono PCM on stdin

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"audio.source: expected one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.source == "file" and not self.file:
            raise ConfigError("audio.file: expected a WAV path when audio.source = \"file\"")
        for key in ("rate", "stdin_rate"):
            if not 4000 <= getattr(self, key) <= 384000:
                raise ConfigError(f"audio.{key}: expected a sample rate in 4000..384000 Hz, "
                                  f"got {getattr(self, key)}")
        if not 10 <= self.chunk_ms <= 1000:
            raise ConfigError(f"audio.chunk_ms: expected 10..1000 ms, got {self.chunk_ms}")
        if not 1 <= self.channels <= 32:
            raise ConfigError(f"audio.channels: expected 1..32, got {self.channels}")


@dataclass(frozen=True)
class ModelConfig:
    path: str = str(DEFAULT_MODEL)  # .tflite with its .json manifest beside it
    threads: int = 1  # interpreter threads
    hop_frames: int = 0  # frames between windows; 0 = the manifest's (lower = more frequent updates)
    backend: str | None = None  # "ai-edge-litert", "tflite-runtime" or "tensorflow"; None = first found

    def __post_init__(self) -> None:
        if not 1 <= self.threads <= 64:
            raise ConfigError(f"model.threads: expected 1..64, got {self.threads}")
        if self.hop_frames < 0:
            raise ConfigError(f"model.hop_frames: expected >= 0 (0 = the model's), got {self.hop_frames}")


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = True  # False: events only on stdout (or nowhere)
    settings: MqttSettings = field(default_factory=MqttSettings)


@dataclass(frozen=True)
class OutputConfig:
    stdout: bool = False  # print every event as a JSON line on stdout


@dataclass(frozen=True)
class StateConfig:
    dir: str | None = None  # spool, event sequence and speaker adaptation, per device id; None = in memory only


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on what one device sends, so a fleet's broker sees a predictable load.

    Both are counted in audio time (sample positions), not wall time: a file replayed with --fast
    is limited exactly as the same audio from a microphone.
    """

    events_per_minute: float = 60.0  # sustained utterance events per minute of audio; past it they are dropped
    event_burst: int = 20  # events allowed back to back before the rate applies
    state_interval_s: float = 2.0  # the retained state is published on change, at most this often

    def __post_init__(self) -> None:
        if not 0 < self.events_per_minute <= 6000:
            raise ConfigError(f"limits.events_per_minute: expected 0 < rate <= 6000, got {self.events_per_minute}")
        if not 1 <= self.event_burst <= 10_000:
            raise ConfigError(f"limits.event_burst: expected 1..10000, got {self.event_burst}")
        if not 0.1 <= self.state_interval_s <= 3600:
            raise ConfigError(f"limits.state_interval_s: expected 0.1..3600 s, got {self.state_interval_s}")


@dataclass(frozen=True)
class LogConfig:
    level: str = "warning"  # quiet by default: warnings and errors only
    format: str = "kv"  # "kv" (key=value) or "json" lines

    def __post_init__(self) -> None:
        if self.level not in LOG_LEVELS:
            raise ConfigError(f"log.level: expected one of {', '.join(LOG_LEVELS)}, got {self.level!r}")
        if self.format not in LOG_FORMATS:
            raise ConfigError(f"log.format: expected one of {', '.join(LOG_FORMATS)}, got {self.format!r}")


@dataclass(frozen=True)
class Config:
    origin: str  # where it came from, for messages: the file, or "defaults"
    device: DeviceConfig = field(default_factory=DeviceConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    # [gate] keys the file sets: they replace those of the gate the model's training windows were cut
    # with (its manifest), so a device cuts the windows its model knows unless deliberately tuned
    gate: dict[str, Any] = field(default_factory=dict)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    speech_check: SpeechCheckConfig = field(default_factory=SpeechCheckConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    state: StateConfig = field(default_factory=StateConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    log: LogConfig = field(default_factory=LogConfig)


# section -> dataclass whose fields are the section's keys
SECTIONS: dict[str, type] = {
    "device": DeviceConfig, "audio": AudioConfig, "model": ModelConfig, "gate": GateConfig,
    "inference": InferenceConfig, "speech_check": SpeechCheckConfig, "state": StateConfig, "mqtt": MqttSettings,
    "output": OutputConfig, "limits": LimitsConfig,
    "log": LogConfig,
}  # in build order: [mqtt] takes device.id and state.dir
# keys that are not fields of the section's dataclass, or fields that are set elsewhere
EXTRA_KEYS = {"mqtt": {"enabled": bool}}
HIDDEN_KEYS = {"mqtt": {"device_id"}}
# sections whose defaults come from the model: only the keys the file sets are kept (checked here)
MODEL_SECTIONS = {"gate"}  # comes from device.id: one name per device, not two
# bounds for fields of other modules' dataclasses that do not check them themselves
RANGES: dict[str, tuple[float | None, float | None]] = {
    "mqtt.port": (1, 65535), "mqtt.keepalive": (5, 65535), "mqtt.spool_max_events": (1, None),
    "mqtt.reconnect_min_s": (0.01, None), "mqtt.reconnect_max_s": (0.01, None),
}
PATH_KEYS = {"audio": {"file"}, "model": {"path"}, "state": {"dir"},
             "mqtt": {"password_file", "ca_file", "cert_file", "key_file", "spool_path"}}


def default_spool_path(state_dir: str, device_id: str) -> Path:
    """The spool of `device_id` in `state_dir` (unless mqtt.spool_path names another): its own
    file, so events queued under one id are never replayed under another that shares the directory."""
    return device_file(state_dir, SPOOL_FILE, device_id)


def load_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read `path` (None: built-in defaults) and apply `overrides` ({"section.key": value}, from flags)."""
    raw: dict[str, Any] = {}
    origin = "defaults"
    base = Path.cwd()
    if path is not None:
        path = Path(path)
        origin, base = str(path), path.resolve().parent
        text = read_user_file(path, "config file", ConfigError)
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except RecursionError:  # tomllib parses nested arrays and inline tables recursively
            raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    from_cli: set[str] = set()
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        raw.setdefault(section, {})[key] = value
        from_cli.add(dotted)
    return _build(raw, origin, base, from_cli)


def _build(raw: dict[str, Any], origin: str, base: Path, from_cli: set[str]) -> Config:
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{origin}: [{unknown[0]}]: unknown section (expected {', '.join(SECTIONS)})")
    built: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        table = raw.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: {section}: expected a table [{section}], got {_toml_type(table)}")
        origins = {key: CLI if f"{section}.{key}" in from_cli else origin for key in table}
        values = _section_values(section, cls, table, origins, base)
        extras = {k: values.pop(k) for k in list(values) if k in EXTRA_KEYS.get(section, {})}
        if section == "mqtt":
            values["device_id"] = built["device"].id
        try:
            built[section] = cls(**values)
        except (ConfigError, ValueError) as exc:
            touched = any(k.startswith(section + ".") for k in from_cli)
            prefix = f"{origin} (with command-line overrides)" if touched else origin
            text = str(exc)
            raise ConfigError(f"{prefix}: {text if text.startswith(section) else f'{section}: {text}'}") from None
        if section in MODEL_SECTIONS:
            built[section] = values
        if section == "mqtt":
            settings = built["mqtt"]
            if settings.spool_path is None and built["state"].dir is not None:
                settings = dataclasses.replace(
                    settings, spool_path=str(default_spool_path(built["state"].dir, built["device"].id)))
            built["mqtt"] = MqttConfig(enabled=extras.get("enabled", True), settings=settings)
    return Config(origin=origin, **built)


def _section_values(section: str, cls: type, table: dict[str, Any], origins: dict[str, str],
                    base: Path) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    allowed = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}
    for hidden in HIDDEN_KEYS.get(section, ()):
        allowed.pop(hidden, None)
    allowed.update(EXTRA_KEYS.get(section, {}))
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in allowed:
            hint = " (set device.id instead)" if key in HIDDEN_KEYS.get(section, ()) else ""
            raise ConfigError(f"{origins[key]}: {section}.{key}: unknown key{hint} "
                              f"(expected one of {', '.join(allowed)})")
        values[key] = _check(value, allowed[key], f"{section}.{key}", origins[key])
        if key in PATH_KEYS.get(section, ()) and isinstance(values[key], str):
            # a path from the file is relative to the file; one from a flag to where the user is
            values[key] = _resolve(values[key], Path.cwd() if origins[key] == CLI else base, f"{section}.{key}",
                                   origins[key])
    return values


def _resolve(value: str, base: Path, key: str, origin: str) -> str:
    try:
        p = Path(value).expanduser()
    except RuntimeError:  # "~someone/…" for a user this system does not know
        raise ConfigError(f"{origin}: {key}: cannot expand the home directory in {value!r}") from None
    return str(p if p.is_absolute() else base / p)


def _check(value: Any, hint: Any, key: str, origin: str) -> Any:
    """`value` converted to the field type `hint`, or a ConfigError naming the key and what was expected."""
    if _is_mapping(hint) and isinstance(value, dict):  # check each entry, so the error names it
        value_hint = typing.get_args(hint)[1] if typing.get_args(hint) else Any
        return {k: _check(v, value_hint, f"{key}.{k}", origin) for k, v in value.items()}
    ok, converted = _convert(value, hint)
    if not ok:
        raise ConfigError(f"{origin}: {key}: expected {_describe(hint)}, got {_toml_type(value)} {value!r}")
    low, high = RANGES.get(key, (None, None))
    if (low is not None and converted < low) or (high is not None and converted > high):
        span = f"{low}..{high}" if high is not None else f">= {low}"
        raise ConfigError(f"{origin}: {key}: expected {_describe(hint)} in {span}, got {value!r}")
    return converted


def _is_mapping(hint: Any) -> bool:
    return typing.get_origin(hint) in (dict, Mapping) or hint in (dict, Mapping)


def _convert(value: Any, hint: Any) -> tuple[bool, Any]:
    """(True, converted) when `value` (as parsed from TOML) fits `hint`, else (False, None)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for option in args:
            if option is not type(None):
                ok, converted = _convert(value, option)
                if ok:
                    return True, converted
        return False, None
    if hint is Any:
        return True, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:  # TOML has nan and inf; no setting means either, and both defeat range checks
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else None
    if hint is str:
        return isinstance(value, str), value
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        items = [_convert(v, args[0]) for v in value] if isinstance(value, list) else [(False, None)]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    return False, None


def _describe(hint: Any) -> str:
    """The TOML type(s) a field accepts, in TOML's words."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is tuple:
        return f"array of {_describe(args[0])}"
    if _is_mapping(hint):
        return f"table of {_describe(args[1])}" if args else "table"
    names = {bool: "boolean", int: "integer", float: "finite number", str: "string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _toml_type(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)
