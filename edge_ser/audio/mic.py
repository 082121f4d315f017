"""The microphone through PyAudio (PortAudio): device by index or name, 16 kHz or the device's own
rate resampled, overflow counting, and reconnection with backoff instead of dying.

Why callback mode: PortAudio reports input overflows to the callback, and a blocking read would
either raise on them (losing the chunk) or hide them. The callback only queues bytes; all work
happens in the daemon's thread. A device that stops delivering (unplugged USB microphone, sound
server gone) is noticed after STALL_S without audio, closed, and reopened with exponential
backoff; meanwhile `health` says what is wrong, so the retained state shows it.

PortAudio re-enumerates devices only when it is initialised, so every (re)connection starts a new
PyAudio instance; its ALSA/JACK probing noise on stderr is filtered (native_stderr).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from edge_ser.audio.pcm import pcm16_to_float
from edge_ser.audio.resampler import StreamResampler
from edge_ser.audio.source import EMPTY, HEARTBEAT_S, AudioSource
from edge_ser.errors import ConfigError
from edge_ser.native_stderr import filtered_stderr

STALL_S = 2.0  # no audio for this long: the device is considered gone
QUEUE_CHUNKS = 50  # chunks buffered between the callback and the daemon before they count as overflows

log = logging.getLogger("edge_ser.source")


def import_pyaudio() -> ModuleType:
    """PyAudio is an optional extra; say how to get it instead of an ImportError traceback."""
    try:
        import pyaudio
    except ImportError:
        raise ConfigError("audio.source = \"mic\" needs PyAudio: pip install 'edge-ser[mic]' "
                          "(and apt-get install portaudio19-dev to build it)") from None
    return pyaudio


class DeviceUnavailable(Exception):
    """The microphone cannot be opened right now (absent, busy, refused); retried with backoff."""


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int
    default_rate: int
    host_api: str
    is_default: bool


def input_devices(pa: Any) -> list[InputDevice]:
    """Every device PortAudio can record from."""
    try:
        default = int(pa.get_default_input_device_info()["index"])
    except OSError:
        default = -1
    found = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if int(info["maxInputChannels"]) > 0:
            api = pa.get_host_api_info_by_index(int(info["hostApi"]))["name"]
            found.append(InputDevice(i, str(info["name"]), int(info["maxInputChannels"]),
                                     int(info["defaultSampleRate"]), str(api), i == default))
    return found


def choose_device(devices: list[InputDevice], wanted: str | int | None) -> InputDevice:
    """By index, by exact name, by case-insensitive part of the name, or the default input."""
    if not devices:
        raise DeviceUnavailable("no audio input device found")
    if wanted is None:
        for d in devices:
            if d.is_default:
                return d
        raise DeviceUnavailable("no default audio input device")
    if isinstance(wanted, int) or wanted.isdigit():
        for d in devices:
            if d.index == int(wanted):
                return d
    else:
        exact = [d for d in devices if d.name == wanted]
        partial = [d for d in devices if wanted.lower() in d.name.lower()]
        if exact or partial:
            return (exact or partial)[0]
    names = ", ".join(f"{d.index} {d.name!r}" for d in devices)
    raise DeviceUnavailable(f"input device {wanted!r} not found (inputs: {names})")


class _Capture:
    """One open PortAudio input stream feeding a queue from its callback."""

    def __init__(self, pyaudio: ModuleType, device: InputDevice, rates: list[int], channels: int,
                 chunk_ms: int, health: Any) -> None:
        self._pyaudio, self.device, self._health = pyaudio, device, health
        self.channels = min(channels, device.channels)
        self.queue: queue.Queue[bytes] = queue.Queue(maxsize=QUEUE_CHUNKS)
        with filtered_stderr():
            self._pa = pyaudio.PyAudio()
        self.stream = None
        failures = []
        for rate in dict.fromkeys(rates):  # preferred first, then the device's own; no duplicates
            try:
                with filtered_stderr():
                    self.stream = self._pa.open(
                        format=pyaudio.paInt16, channels=self.channels, rate=rate, input=True,
                        input_device_index=device.index, frames_per_buffer=max(1, rate * chunk_ms // 1000),
                        stream_callback=self._callback)
                self.rate = rate
                return
            except (OSError, ValueError) as exc:
                failures.append(f"{rate} Hz: {exc}")
        self._pa.terminate()
        raise DeviceUnavailable(f"cannot open {device.name!r}: " + "; ".join(failures))

    def _callback(self, data: bytes | None, frames: int, time_info: Any, status: int) -> tuple[None, int]:
        if status & self._pyaudio.paInputOverflow:
            self._health.overflows += 1
        if data:
            try:
                self.queue.put_nowait(data)
            except queue.Full:  # the daemon fell behind: this chunk is lost, like an overflow
                self._health.overflows += 1
        return None, self._pyaudio.paContinue

    @property
    def active(self) -> bool:
        try:
            return bool(self.stream is not None and self.stream.is_active())
        except OSError:
            return False

    def close(self) -> None:
        with filtered_stderr():
            try:
                if self.stream is not None:
                    self.stream.stop_stream()
                    self.stream.close()
            except OSError:
                pass  # the device is already gone; closing it is all we wanted
            self._pa.terminate()


class MicSource(AudioSource):
    """Live microphone audio at `sample_rate`, surviving overflows and disappearing devices."""

    def __init__(self, device: str | int | None, sample_rate: int, *, preferred_rate: int = 16000,
                 channels: int = 1, chunk_ms: int = 100, retry_min_s: float = 0.5,
                 retry_max_s: float = 30.0) -> None:
        super().__init__(sample_rate)
        self.pyaudio = import_pyaudio()
        self.device, self.preferred_rate, self.channels, self.chunk_ms = device, preferred_rate, channels, chunk_ms
        self.retry_min_s, self.retry_max_s = retry_min_s, retry_max_s
        self.opened: str | None = None  # "name @ rate" of the open device, for the log

    def describe(self) -> str:
        return f"microphone {'default' if self.device is None else repr(self.device)}"

    def _open(self) -> _Capture:
        with filtered_stderr():
            pa = self.pyaudio.PyAudio()
        try:
            device = choose_device(input_devices(pa), self.device)
        finally:
            pa.terminate()
        return _Capture(self.pyaudio, device, [self.preferred_rate, device.default_rate], self.channels,
                        self.chunk_ms, self.health)

    def chunks(self) -> Iterator[np.ndarray]:
        delay = self.retry_min_s
        while not self.closed:
            try:
                capture = self._open()
            except DeviceUnavailable as exc:
                self.health.fail(str(exc))
                yield from self._pause(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            self.opened = f"{capture.device.name} @ {capture.rate} Hz"
            log.info("microphone opened: %s (device %d)", self.opened, capture.device.index)
            try:
                heard = yield from self._pump(capture)
            finally:
                capture.close()
                self.opened = None
            if heard:
                delay = self.retry_min_s
            if not self.closed:
                self.health.fail(f"no audio from {capture.device.name!r} for {STALL_S:.0f} s; reconnecting")
                yield from self._pause(delay)
                delay = min(delay * 2, self.retry_max_s)

    def _pump(self, capture: _Capture) -> Generator[np.ndarray, None, bool]:
        """Chunks from one open stream until it stalls or the source is closed; True if any arrived."""
        resampler = StreamResampler(capture.rate, self.sample_rate)
        heard, quiet = False, 0.0
        while not self.closed:
            try:
                data = capture.queue.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                quiet += HEARTBEAT_S
                if quiet >= STALL_S or not capture.active:
                    return heard
                yield EMPTY
                continue
            if not heard:
                heard = True
                self.health.recover()
            quiet = 0.0
            samples = np.frombuffer(data, dtype="<i2")
            if capture.channels > 1:
                samples = pcm16_to_float(samples).reshape(-1, capture.channels).mean(axis=1)
            if resampler.passthrough:
                yield samples
            else:
                yield resampler.push(samples if samples.dtype == np.float32 else pcm16_to_float(samples))
        return heard

    def _pause(self, seconds: float) -> Iterator[np.ndarray]:
        """Wait before a retry, still yielding heartbeats; close() cuts it short."""
        waited = 0.0
        while waited < seconds and not self._closed.wait(min(HEARTBEAT_S, seconds - waited)):
            waited += HEARTBEAT_S
            yield EMPTY
