"""A real PulseAudio server with a virtual microphone, so the daemon's PyAudio capture path runs
for real in tests (and in CI, where there is no sound card).

Audio played into the null sink `vspk` comes back out of the source `vmic` (a remap of the sink's
monitor). PyAudio reaches it through ALSA's "pulse"/"default" devices (libasound2-plugins) when a
child process has PULSE_SERVER and PULSE_SOURCE set, which `VirtualMic.env()` provides. The server
runs as the current user (root included) with its own runtime directory, so it touches nothing of
the machine's own sound setup, and `stop()`/`start()` restart it on the same socket to simulate a
microphone that disappears and comes back; `unplug()`/`plug_in()` remove and restore the devices
while the server runs, as when a USB microphone is pulled and plugged in again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

WAIT_S = 15.0


class VirtualMic:
    """One PulseAudio process: null sink `vspk` at 16 kHz mono, its monitor remapped as `vmic`."""

    sink, source = "vspk", "vmic"

    def __init__(self, runtime_dir: Path) -> None:
        exe = shutil.which("pulseaudio")
        if exe is None:
            pytest.skip("pulseaudio is not installed (apt-get install pulseaudio pulseaudio-utils)")
        self._exe = exe
        self.runtime_dir = runtime_dir
        runtime_dir.mkdir(parents=True, exist_ok=True)
        runtime_dir.chmod(0o700)
        self.socket = runtime_dir / "pulse" / "native"
        self.log_file = runtime_dir / "pulseaudio.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a child that should record from `vmic` (and play into `vspk`)."""
        env = dict(os.environ if base is None else base)
        env.update(XDG_RUNTIME_DIR=str(self.runtime_dir), PULSE_SERVER=f"unix:{self.socket}",
                   PULSE_SOURCE=self.source, PULSE_SINK=self.sink, HOME=str(self.runtime_dir))
        return env

    def start(self) -> None:
        if self._proc is not None:
            return
        cmd = [self._exe, "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
               "--use-pid-file=false", "--disable-shm=true", "--log-target=stderr",
               "--load=module-native-protocol-unix auth-anonymous=1",
               f"--load=module-null-sink sink_name={self.sink} rate=16000 channels=1",
               f"--load=module-remap-source master={self.sink}.monitor source_name={self.source}"]
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(cmd, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WAIT_S
        while not self._ready():
            if self._proc.poll() is not None:
                raise AssertionError(f"pulseaudio exited with {self._proc.returncode}: {self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"pulseaudio did not come up: {self.log_text()}")
            time.sleep(0.05)
        subprocess.run(["pactl", "set-default-source", self.source], env=self.env(), check=True,
                       capture_output=True, timeout=WAIT_S)

    def _ready(self) -> bool:
        if not self.socket.exists():
            return False
        probe = subprocess.run(["pactl", "info"], env=self.env(), capture_output=True, timeout=WAIT_S)
        return probe.returncode == 0

    def stop(self) -> None:
        """Kill the server: clients see their device vanish, as with an unplugged microphone."""
        if self._proc is None:
            return
        self._proc.kill()
        self._proc.wait(timeout=WAIT_S)
        self._proc = None

    def pactl(self, *args: str) -> str:
        done = subprocess.run(["pactl", *args], env=self.env(), capture_output=True, text=True, timeout=WAIT_S)
        assert done.returncode == 0, f"pactl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def unplug(self) -> None:
        """Take the microphone away while the server runs, as when the only (USB) microphone of a
        machine is pulled: unload `vmic` (pactl unload-module) and then `vspk`, whose monitor would
        otherwise be left as a source, and PulseAudio (16) moves a recording stream whose source
        goes onto any source that remains instead of ending it."""
        modules = [line.split("\t") for line in self.pactl("list", "short", "modules").splitlines()]
        for module, argument in (("module-remap-source", f"source_name={self.source}"),
                                 ("module-null-sink", f"sink_name={self.sink}")):
            (index,) = [m[0] for m in modules if m[1] == module and argument in m[2]]
            self.pactl("unload-module", index)

    def plug_in(self) -> None:
        """Bring `vspk` and `vmic` back under the same names, so a client asking for them finds them."""
        self.pactl("load-module", "module-null-sink", f"sink_name={self.sink}", "rate=16000", "channels=1")
        self.pactl("load-module", "module-remap-source", f"master={self.sink}.monitor", f"source_name={self.source}")
        self.pactl("set-default-source", self.source)

    def play(self, wav: Path) -> subprocess.Popen[bytes]:
        """Start playing a WAV into the virtual speaker (heard on the virtual mic), in real time."""
        return subprocess.Popen(["paplay", f"--device={self.sink}", str(wav)], env=self.env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def play_and_wait(self, wav: Path, timeout: float = 60.0) -> None:
        proc = self.play(wav)
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"paplay failed: {err.decode(errors='replace')}"

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


@pytest.fixture(scope="session")
def virtual_mic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualMic]:
    """The suite's shared PulseAudio server with the `vmic` virtual microphone."""
    mic = VirtualMic(tmp_path_factory.mktemp("pulse"))
    mic.start()
    yield mic
    mic.stop()


@pytest.fixture
def pulse_factory(tmp_path: Path) -> Iterator[Callable[[], VirtualMic]]:
    """A private server per call, for tests that stop and restart it; all stopped at teardown."""
    made: list[VirtualMic] = []

    def make() -> VirtualMic:
        mic = VirtualMic(tmp_path / f"pulse{len(made)}")
        made.append(mic)
        mic.start()
        return mic

    yield make
    for mic in made:
        mic.stop()
