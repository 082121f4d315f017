"""Configuration: every shipped profile loads, and every mistake names the file, the key and what
was expected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_ser.app.config import load_config
from edge_ser.errors import ConfigError
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.model.manifest import Manifest, manifest_path
from edge_ser.recognise.labelling import Labeller

PROFILES = sorted((Path(__file__).resolve().parents[1] / "firmware_config").glob("*.toml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "device.toml"
    path.write_text(text)
    return path


def test_there_are_profiles_for_every_target() -> None:
    assert {p.stem for p in PROFILES} >= {"rpi4", "rpi-zero2w", "kiosk-x86", "robot"}


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_shipped_profile_loads(profile: Path) -> None:
    cfg = load_config(profile)
    assert cfg.origin == str(profile)
    assert cfg.mqtt.settings.device_id == cfg.device.id
    assert cfg.state.dir == "/var/lib/edge-ser"
    assert cfg.mqtt.settings.spool_path == f"/var/lib/edge-ser/spool.{cfg.device.id}.sqlite"
    if cfg.inference.groups and manifest_path(DEFAULT_MODEL).is_file():
        # Groups are checked against the model at start: they must fit the bundled default model.
        Labeller(cfg.inference, Manifest.load(manifest_path(DEFAULT_MODEL)).labels, origin=str(profile))


def test_defaults_without_a_file() -> None:
    cfg = load_config(None)
    assert cfg.origin == "defaults"
    assert cfg.audio.source == "mic" and cfg.mqtt.enabled and cfg.log.level == "warning"
    assert cfg.mqtt.settings.spool_path is None
    assert cfg.gate == {}  # the model's own gate, untouched


def test_values_map_onto_dataclasses_and_paths_resolve_next_to_the_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """
[device]
id = "kitchen"
[audio]
source = "file"
file = "clips/hello.wav"
device = 2
[gate]
threshold_db = 10
[inference]
ema = 1
[inference.groups]
all = ["neutral", "happy"]
[mqtt]
port = 8883
enabled = false
[state]
dir = "state"
"""))
    assert cfg.audio.file == str(tmp_path / "clips" / "hello.wav")
    assert cfg.audio.device == 2
    assert cfg.gate == {"threshold_db": 10.0} and isinstance(cfg.gate["threshold_db"], float)
    assert cfg.inference.groups == {"all": ("neutral", "happy")}
    assert cfg.mqtt.enabled is False and cfg.mqtt.settings.port == 8883
    assert cfg.mqtt.settings.device_id == "kitchen"
    assert cfg.mqtt.settings.spool_path == str(tmp_path / "state" / "spool.kitchen.sqlite")


def test_command_line_overrides_win_and_are_named_in_errors(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[mqtt]\nport = 1883\n[audio]\nrate = 48000\n')
    cfg = load_config(path, {"mqtt.port": 1884, "audio.source": "stdin"})
    assert cfg.mqtt.settings.port == 1884 and cfg.audio.source == "stdin" and cfg.audio.rate == 48000
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(path, {"audio.file": "x.wav", "audio.source": "file"})
    assert cfg.audio.file == str(elsewhere / "x.wav")  # a flag's path is relative to the working directory
    with pytest.raises(ConfigError, match=r"^command line: mqtt.port: expected integer"):
        load_config(path, {"mqtt.port": "x"})
    with pytest.raises(ConfigError, match=r"\(with command-line overrides\): inference.threshold"):
        load_config(path, {"inference.threshold": 3.0})


@pytest.mark.parametrize(("text", "message"), [
    ('[mqtt]\nport = "1883"', "mqtt.port: expected integer, got string '1883'"),
    ("[mqtt]\nport = 0", "mqtt.port: expected integer in 1..65535, got 0"),
    ("[mqtt]\ntls = 1", "mqtt.tls: expected boolean, got integer 1"),
    ('[mqtt]\ndevice_id = "x"', "mqtt.device_id: unknown key (set device.id instead)"),
    ("[mqtt]\nhots = 'a'", "mqtt.hots: unknown key (expected one of host, port"),
    ("[sound]\nrate = 1", "[sound]: unknown section"),
    ("mqtt = 1", "mqtt: expected a table [mqtt], got integer"),
    ('[audio]\nsource = "line-in"', "audio.source: expected one of mic, file, stdin, got 'line-in'"),
    ('[audio]\nsource = "file"', "audio.file: expected a WAV path"),
    ("[audio]\nchunk_ms = 5", "audio.chunk_ms: expected 10..1000 ms, got 5"),
    ("[audio]\ndevice = 1.5", "audio.device: expected string or integer, got float 1.5"),
    ("[model]\nthreads = 0", "model.threads: expected 1..64, got 0"),
    ("[gate]\nonset_frames = 0", "gate: onset_frames and min_speech_frames must be >= 1"),
    ("[inference]\nema = 0", "inference.ema: expected a number in (0, 1]"),
    ('[inference.groups]\nneg = ["sad", 3]', "inference.groups.neg: expected array of string"),
    ('[device]\nid = "a/b"', "device.id: expected a non-empty name without '/'"),
    # the id names the device's files in the state directory: no NUL, no control characters
    ('[device]\nid = "a\\u0000b"', "device.id: expected a non-empty name without '/', '+', '#', spaces or control"),
    ('[device]\nid = "a\\nb"', "got 'a\\nb'"),
    ('[device]\nid = "living-room-kiosk"', "device.id: expected at most 16 bytes, got 17"),
    ('[log]\nlevel = "loud"', "log.level: expected one of debug, info, warning, error"),
    ("[audio\n", "not valid TOML"),
])
def test_errors_name_file_key_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(("toml", "expected"), [
    ("[limits]\nevents_per_minute = 0\n", "limits.events_per_minute: expected 0 < rate <= 6000"),
    ("[limits]\nevent_burst = 0\n", "limits.event_burst: expected 1..10000"),
    ("[limits]\nstate_interval_s = 0.01\n", "limits.state_interval_s: expected 0.1..3600 s"),
    ("[limits]\nstate_interval_s = nan\n", "limits.state_interval_s: expected finite number"),
])
def test_limits_out_of_range_are_refused_naming_the_key(tmp_path: Path, toml: str, expected: str) -> None:
    path = tmp_path / "limits.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(path)
