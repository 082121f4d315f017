"""Fuzzing the four places that read what a user or a stranger hands the device: the WAV reader,
the TOML config loader, the model manifest loader and the ``cmd`` payload handler.

Each is fed FUZZ_EXAMPLES generated malformed inputs (truncated headers, absurd chunk sizes,
wrong formats, NaN/inf samples, huge, empty and deeply nested payloads, wrong JSON and TOML types).
What is demanded of every one: it is accepted with a sane result, or refused with our own error
type whose one-line message names the file (or, for a command, an error result that validates
against the schema); never another exception, never a hang (10 s per case: generous, as the
machine may be shared with training jobs), never memory out of proportion to the input (the
peak RSS). The bugs these found are pinned by the plain regression tests at the end, which run
in the quick loop.

The 10,000-case runs are `slow` (about 80 s of CPU together), so `make test` runs them and the
quick loop does not.
"""

from __future__ import annotations

import json
import math
import random
import resource
import struct
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_ser.app.config import SECTIONS, load_config
from edge_ser.audio.wavfile import EXTENSIBLE, IEEE_FLOAT, PCM, read_wav, write_wav
from edge_ser.errors import AudioFileError, ConfigError, ModelError
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.model.manifest import Manifest, manifest_path
from edge_ser.mqtt.publisher import MqttPublisher
from edge_ser.mqtt.settings import MqttSettings
from edge_ser.protocol.commands import COMMAND_ALIASES, MAX_COMMAND_BYTES
from edge_ser.protocol.payloads import load_schema

T = TypeVar("T")
FUZZ_EXAMPLES = 10_000
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=timedelta(seconds=10), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
# Inputs are at most a few kB, so any sizeable growth of the peak RSS means a reader believed a
# header's size field. First-use imports (scipy) stay well below this.
MAX_RSS_GROWTH_KB = 256 * 1024


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for the module; each example overwrites its single file."""
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def rss_baseline() -> int:
    """The process' peak RSS before fuzzing (kB): tracing every allocation would cost more time
    than the fuzzing itself, and an input that makes a reader allocate without bound shows here."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def attempt(call: Callable[[], T], rss_baseline: int) -> tuple[T | None, Exception | None]:
    """(result, None) or (None, exception), after checking the peak RSS stayed within bounds."""
    try:
        result, error = call(), None
    except Exception as exc:
        result, error = None, exc
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_baseline
    assert grown_kb < MAX_RSS_GROWTH_KB, f"peak RSS grew by {grown_kb} kB while fuzzing"
    return result, error


def assert_clean_refusal(exc: Exception | None, kind: type[Exception], path: Path, given: object = None) -> None:
    """Our own error type, one line, naming the file: what a user sees instead of a traceback."""
    assert isinstance(exc, kind), f"{type(exc).__name__}: {exc} for {given!r:.2000}"
    message = str(exc)
    assert str(path) in message, message
    assert "\n" not in message, message


# ---------------------------------------------------------------------------------- generators
# Hypothesis hands each example a seeded random.Random and the generators below build the input
# from it: drawing every byte through hypothesis costs about ten times as much per case, which
# 40,000 cases on a shared two-core machine cannot afford. A failing case is still reproducible
# (hypothesis reports the seed) and its input is printed by the failing assertion.

def pick(rng: random.Random, likely: list[Any], bits: int) -> Any:
    """Mostly a value that means something to the parser, sometimes any `bits`-bit number."""
    return rng.choice(likely) if rng.random() < 0.7 else rng.getrandbits(bits)


def some_bytes(rng: random.Random, max_size: int) -> bytes:
    return rng.randbytes(rng.randint(0, max_size))


def some_text(rng: random.Random, max_size: int) -> str:
    alphabet = "abcxyz_-. \t\n\"'[]{}=#~/\\0123456789é\u0000\U0001F600"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_size)))


def json_value(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value, NaN and infinities included, nested a little."""
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, 1, -1, 2**31, -(2**63), 10**30, rng.randint(-1000, 1000)])
    if kind == 3:
        return rng.choice([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, 1e-308, rng.uniform(-1e3, 1e3)])
    if kind in (4, 5):
        return some_text(rng, 10)
    if kind in (6, 7):
        return [json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {some_text(rng, 8): json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def nested(rng: random.Random, opener: str, closer: str, max_depth: int) -> str:
    depth = rng.randint(1, max_depth)
    return opener * depth + (closer * depth if rng.random() < 0.5 else "")


def fuzzed(generator: Callable[[random.Random], T]) -> st.SearchStrategy[T]:
    return st.randoms(use_true_random=True).map(generator)


# ---------------------------------------------------------------------------------- WAV reader

def _fmt_body(rng: random.Random) -> bytes:
    tag = pick(rng, [PCM, IEEE_FLOAT, EXTENSIBLE, 0x0006, 0x0055], 16)
    channels = pick(rng, [0, 1, 2, 6, 255, 0xFFFF], 16)
    rate = pick(rng, [0, 1, 999, 8000, 16000, 44100, 48000, 384000, 384001, 0xFFFFFFFF], 32)
    bits = pick(rng, [0, 4, 8, 12, 16, 24, 32, 64], 16)
    align = pick(rng, [channels * bits // 8 & 0xFFFF], 16)
    body = struct.pack("<HHIIHH", tag, channels, rate, rng.getrandbits(32), align, bits)
    if tag == EXTENSIBLE or rng.random() < 0.3:
        body += struct.pack("<HHIH", 22, bits, 0, pick(rng, [PCM, IEEE_FLOAT], 16)) + some_bytes(rng, 14)
    return body[: len(body) if rng.random() < 0.9 else rng.randint(0, len(body))]


def _data_body(rng: random.Random) -> bytes:
    kind = rng.choice(["bytes", "<f4", "<f8", "<i2"])
    if kind == "bytes":
        return some_bytes(rng, 512)
    specials = [math.nan, math.inf, -math.inf, 0.0, 1.0, -1.0, 1e30]
    values = [rng.choice(specials) if rng.random() < 0.2 else rng.uniform(-2, 2) for _ in range(rng.randint(0, 64))]
    if kind == "<i2":
        return np.asarray([int(rng.getrandbits(16)) - 32768 for _ in values], dtype="<i2").tobytes()
    return np.asarray(values, dtype=kind).tobytes()


def wav_file(rng: random.Random) -> bytes:
    """RIFF files that are almost right: real chunk structure, wrong numbers, cut anywhere."""
    if rng.random() < 0.1:
        return some_bytes(rng, 256)  # anything at all
    chunks = []
    for _ in range(rng.randint(0, 4)):
        chunk_id = pick(rng, [b"fmt ", b"fmt ", b"data", b"data", b"LIST", b"fact"], 32)
        chunk_id = chunk_id if isinstance(chunk_id, bytes) else struct.pack("<I", chunk_id)
        body = (_fmt_body(rng) if chunk_id == b"fmt " else _data_body(rng) if chunk_id == b"data"
                else some_bytes(rng, 32))
        size = pick(rng, [len(body), len(body), 0, 0xFFFFFFFF, len(body) + 1], 32)  # honest, or absurd
        chunks.append(chunk_id + struct.pack("<I", size) + body + b"\0" * (len(body) & 1))
    magic = pick(rng, [b"RIFF", b"RIFF", b"RIFX"], 32)
    magic = magic if isinstance(magic, bytes) else struct.pack("<I", magic)
    wave = b"WAVE" if rng.random() < 0.9 else some_bytes(rng, 4)
    blob = magic + struct.pack("<I", rng.getrandbits(32)) + wave + b"".join(chunks)
    return blob if rng.random() < 0.7 else blob[: rng.randint(0, len(blob))]


@pytest.mark.slow
@FUZZ
@given(blob=fuzzed(wav_file))
def test_fuzz_wav_reader(scratch: Path, rss_baseline: int, blob: bytes) -> None:
    path = scratch / "fuzz.wav"
    path.write_bytes(blob)
    read, error = attempt(lambda: read_wav(path), rss_baseline)
    if read is None:
        assert_clean_refusal(error, AudioFileError, path, blob)
    else:
        data, info = read
        assert data.dtype == np.float32 and data.shape == (info.frames, info.channels) and info.frames > 0, blob
        assert np.isfinite(data).all(), blob
        if info.encoding == "pcm":
            assert np.abs(data).max() <= 1.0, blob


# ---------------------------------------------------------------------------------- TOML config

def _toml_key(rng: random.Random) -> str:
    return rng.choice(["x", "id", "rate", "enabled", "groups", "a-b", "_"]) + str(rng.randint(0, 9) or "")


def _toml_value(value: Any) -> str:
    """A value in TOML syntax (json.dumps' string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int | str) or value is None:  # None: TOML has no null, so this line is invalid TOML
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def toml_config(rng: random.Random) -> str:
    """Device profiles with real and invented sections and keys holding values of every TOML type."""
    choice = rng.randrange(20)
    if choice == 0:
        return some_text(rng, 200)  # not TOML at all, mostly
    if choice == 1:
        return "x = " + nested(rng, "[", "]", 5000)
    if choice == 2:
        return "x = " + nested(rng, "{a = ", "}", 2000)
    lines = []
    for section in rng.sample([*SECTIONS, "inference.groups", "nope", "mqtt.x"], rng.randint(0, 4)):
        fields = list(getattr(SECTIONS.get(section), "__dataclass_fields__", {})) or ["x"]
        lines.append(f"[{section}]")
        for _ in range(rng.randint(0, 4)):
            key = rng.choice(fields) if rng.random() < 0.8 else _toml_key(rng)
            value = rng.choice(["~nosuchuser/x", "/dev/null", "", "mic", "file", "kv", 16000, 0, -1, 1e9])
            lines.append(f"{key} = {_toml_value(value if rng.random() < 0.3 else json_value(rng))}")
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@FUZZ
@given(text=fuzzed(toml_config))
def test_fuzz_config_loader(scratch: Path, rss_baseline: int, text: str) -> None:
    path = scratch / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    cfg, error = attempt(lambda: load_config(path), rss_baseline)
    if cfg is None:
        assert_clean_refusal(error, ConfigError, path, text)
    else:
        assert cfg.origin == str(path)


# ---------------------------------------------------------------------------------- manifest

BUNDLED = json.loads(manifest_path(DEFAULT_MODEL).read_text())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON tree, containers included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


MANIFEST_PATHS = _paths(BUNDLED)[1:]


def manifest_text(rng: random.Random) -> str:
    """The bundled manifest with one to four values replaced, removed or joined by a stranger."""
    choice = rng.randrange(20)
    if choice == 0:
        return some_text(rng, 200)
    if choice == 1:
        return nested(rng, "[", "]", 50_000)
    data = json.loads(json.dumps(BUNDLED))
    for _ in range(rng.randint(1, 4)):
        where = rng.choice(MANIFEST_PATHS)
        parent = data
        try:
            for step in where[:-1]:
                parent = parent[step]
            action = rng.choice(["replace", "replace", "delete", "add"])
            if action == "replace":
                parent[where[-1]] = json_value(rng)
            elif action == "delete":
                del parent[where[-1]]
            else:
                parent[some_text(rng, 8)] = json_value(rng)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation changed the tree under this path
    if rng.random() < 0.05:
        data = json_value(rng)  # not even an object
    text = json.dumps(data)
    return text if rng.random() < 0.9 else text[: rng.randint(0, len(text))]


@pytest.mark.slow
@FUZZ
@given(text=fuzzed(manifest_text))
def test_fuzz_manifest_loader(scratch: Path, rss_baseline: int, text: str) -> None:
    path = scratch / "fuzz.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    manifest, error = attempt(lambda: Manifest.load(path), rss_baseline)
    if manifest is None:
        assert_clean_refusal(error, ModelError, path, text)
    else:
        assert manifest.labels and all(isinstance(label, str) and label for label in manifest.labels)
        assert manifest.window_frames >= 1 and manifest.hop_frames >= 1
        assert manifest.input.dtype in ("int8", "uint8", "float32")


# ---------------------------------------------------------------------------------- cmd payloads

def command_payload(rng: random.Random) -> bytes:
    """What a hostile or careless MQTT client may publish on <base>/cmd."""
    choice = rng.randrange(10)
    if choice == 0:
        return some_bytes(rng, 300)
    if choice == 1:
        return nested(rng, rng.choice(["[", '{"a":']), rng.choice(["]", "}"]), 1200).encode()
    if choice == 2:
        return some_bytes(rng, 4 * MAX_COMMAND_BYTES)
    if choice == 3:
        return json_value(rng).__repr__().encode()  # Python, not JSON
    keys = ["command", "command", "id", "comand", "Command", ""]
    data = {(rng.choice(keys) if rng.random() < 0.8 else some_text(rng, 6)):
            (rng.choice(sorted(COMMAND_ALIASES)) if rng.random() < 0.5 else json_value(rng))
            for _ in range(rng.randint(0, 3))}
    text = json.dumps(data if rng.random() < 0.9 else json_value(rng))
    return (text + " " * rng.choice([0, 0, MAX_COMMAND_BYTES])).encode()


@pytest.fixture(scope="module")
def publisher() -> Iterator[MqttPublisher]:
    """A publisher that never connects: its command path is the same function paho calls."""
    pub = MqttPublisher(MqttSettings(), model_name="m", model_version="1", labels=["a", "b"])
    pub._log.disabled = True  # ten thousand "bad command" warnings say nothing new
    pub.set_command_handler(lambda cmd: {"ok": True})
    yield pub
    pub._log.disabled = False
    pub.stop()


RESULTS = jsonschema.Draft202012Validator(load_schema("cmd_result"))


@pytest.mark.slow
@FUZZ
@given(payload=fuzzed(command_payload))
def test_fuzz_command_handler(publisher: MqttPublisher, rss_baseline: int, payload: bytes) -> None:
    answer, error = attempt(lambda: publisher._answer(payload), rss_baseline)
    assert error is None, f"{type(error).__name__}: {error} for {payload!r}"  # always answered, never raises
    assert answer is not None
    result = json.loads(answer)
    RESULTS.validate(result)
    if result["ok"]:
        assert result["command"] in set(COMMAND_ALIASES.values())
        assert len(payload) <= MAX_COMMAND_BYTES
    else:
        assert result["error"] and "\n" not in result["error"]


# ---------------------------------------------------------------------------------- what the fuzzers found

@pytest.mark.parametrize(("text", "expected"), [
    ("x = " + "[" * 3000 + "]" * 3000, "nested too deeply"),  # was RecursionError
    ('[state]\ndir = "~nosuchuser-edge-ser/x"\n', "state.dir: cannot expand the home directory"),  # RuntimeError
    ("[mqtt]\nreconnect_min_s = nan\n", "mqtt.reconnect_min_s: expected finite number"),  # accepted, then a busy loop
    ("[gate]\nthreshold_db = inf\n", "gate.threshold_db: expected finite number"),  # accepted: a deaf gate
])
def test_config_inputs_the_fuzzer_found(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "found.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert_clean_refusal(caught.value, ConfigError, path)
    assert expected in str(caught.value)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda m: m["window"].update(frames=float("inf")), "window.frames must be a positive integer"),  # OverflowError
    (lambda m: m["window"].update(hop_frames=0), "window.hop_frames must be a positive integer"),  # accepted
    (lambda m: m.update(labels="abc"), "labels must be a list"),  # accepted as labels a, b, c
    (lambda m: m["input"].update(scale=0), "input.scale must be a positive number"),  # accepted: x / 0 later
    (lambda m: m["output"].update(dtype="int3"), "output.dtype must be one of"),  # accepted
])
def test_manifests_the_fuzzer_found(tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str) -> None:
    data = json.loads(json.dumps(BUNDLED))
    change(data)
    path = tmp_path / "found.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError) as caught:
        Manifest.load(path)
    assert_clean_refusal(caught.value, ModelError, path)
    assert expected in str(caught.value)
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000)  # was RecursionError
    with pytest.raises(ModelError, match="nested too deeply"):
        Manifest.load(nested)


@pytest.mark.parametrize(("payload", "expected"), [
    (b'{"command": {"pause": 1}}', "unknown command {'pause': 1}"),  # TypeError (unhashable) killed paho's thread
    (b"[" * 1020, "nested too deeply"),  # RecursionError, likewise
    (b'{"command": "pause", "id": "' + b"x" * 2000 + b'"}', "at most 1024 bytes"),  # no bound before
])
def test_commands_the_fuzzer_found(publisher: MqttPublisher, payload: bytes, expected: str) -> None:
    result = json.loads(publisher._answer(payload))
    RESULTS.validate(result)
    assert result["ok"] is False and expected in result["error"]


def test_absurd_wav_sample_rates_are_refused_before_resampling(tmp_path: Path) -> None:
    """4294967295 Hz shares no factor with 16 kHz: resampling would design a ~86e9-tap filter."""
    path = tmp_path / "rate.wav"
    write_wav(path, np.zeros(100), 16000)
    blob = bytearray(path.read_bytes())
    for rate in (0xFFFFFFFF, 999, 384_001):
        blob[24:28] = struct.pack("<I", rate)
        path.write_bytes(bytes(blob))
        with pytest.raises(AudioFileError, match=f"unsupported WAV: {rate} Hz"):
            read_wav(path)


def test_a_newline_in_a_quoted_key_stays_inside_one_escaped_line(tmp_path: Path) -> None:
    """The manifest fuzzer's find: a key holding a newline printed a two-line error (log-line forging)."""
    path = tmp_path / "newline.toml"
    path.write_text('[audio]\n"rate\\nlevel=error msg=forged" = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert_clean_refusal(caught.value, ConfigError, path)
    assert "rate\\nlevel=error" in str(caught.value)
