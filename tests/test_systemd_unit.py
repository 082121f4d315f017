"""The systemd unit in firmware_config/: it verifies, its exposure stays at or below 2.0, it starts the
binary the README installs, and the daemon's own system calls pass the unit's SystemCallFilter.

There is no systemd to run the unit under in a test (nor on CI), so the filter is checked the other way
round: the real daemon (microphone through PulseAudio, MQTT, the durable spool) runs under strace, and
every call it makes must be in the set the unit's filter lines allow, as systemd itself expands them
(`systemd-analyze syscall-filter`); MemoryDenyWriteExecute is checked on its mmap/mprotect calls.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from edge_ser_testing.broker import MosquittoBroker
from tests.daemon_process import synthetic_speech_wav
from tests.pulse_fixtures import VirtualMic

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "firmware_config" / "edge-ser.service"
EXPOSURE_TARGET = 2.0

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed (Debian package: systemd)")


def _directives(name: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(f"{name}=")]


def test_exec_start_is_the_binary_the_readme_installs() -> None:
    (exec_start,) = _directives("ExecStart")
    binary = Path(exec_start.split()[0])
    venv = binary.parent.parent
    assert binary.name == "edge-ser"
    for readme in (REPO / "README.md", REPO / "firmware_config" / "README.md"):
        text = readme.read_text()
        assert f"python3 -m venv {venv} && " in text and f"{venv}/bin/pip install 'edge-ser[mic]'" in text, readme


@needs_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    # verify checks that ExecStart's binary exists: point it at this environment's edge-ser
    here = Path(sys.executable).parent / "edge-ser"
    if not here.is_file():
        pytest.skip(f"no edge-ser console script beside {sys.executable} (install the package)")
    unit = tmp_path / UNIT.name
    unit.write_text(re.sub(r"^ExecStart=\S+", f"ExecStart={here}", UNIT.read_text(), flags=re.M))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "edge-ser.service" not in result.stderr  # no warning about our unit


@needs_analyze
def test_exposure_is_at_most_the_target() -> None:
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(UNIT)], capture_output=True,
                            text=True, timeout=60, check=False)
    found = re.search(r"Overall exposure level for edge-ser\.service: ([0-9.]+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= EXPOSURE_TARGET


def _allowed_syscalls() -> set[str]:
    """The calls the unit's SystemCallFilter lines allow (an allow list, then deny lists), as systemd
    expands its groups."""
    listing = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True, timeout=60,
                             check=True).stdout
    groups: dict[str, list[str]] = {}
    current = None
    for line in listing.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].append(line.strip())

    def expand(name: str) -> set[str]:
        return set().union(*(expand(m) for m in groups[name])) if name.startswith("@") else {name}

    allowed: set[str] = set()
    for line in _directives("SystemCallFilter"):
        deny = line.startswith("~")
        names = set().union(*(expand(n) for n in line.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    return allowed


def _traced(trace: Path, program: str) -> tuple[set[str], list[str]]:
    """(system calls, writable+executable mappings) of every process from the exec of `program` on."""
    text = trace.read_text(errors="replace")
    start = text.find(f'execve("{program}"')
    assert start >= 0, f"{program} was never executed"
    lines = text[text.rfind("\n", 0, start) + 1:].splitlines()
    calls = {m.group(1) for m in (re.match(r"^\d+\s+(?:<\.\.\. )?(\w+)[( ]", ln) for ln in lines) if m}
    wx = [ln for ln in lines if re.search(r"\b(mmap|mprotect)\(.*PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE", ln)]
    return calls, wx


@needs_analyze
@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (Debian package: strace)")
def test_the_daemons_system_calls_pass_the_units_filter(tmp_path: Path, mqtt_broker: MosquittoBroker,
                                                        virtual_mic: VirtualMic) -> None:
    pytest.importorskip("pyaudio", reason="the microphone run needs PyAudio (the 'mic' extra)")
    allowed = _allowed_syscalls()
    assert {"read", "openat", "connect"} <= allowed and "mount" not in allowed  # the expansion is sane
    work = Path(tempfile.mkdtemp(prefix="edge-ser-strace-"))  # pytest's tmp_path is closed to other users
    work.chmod(0o755)
    try:
        _trace_runs(work, allowed, mqtt_broker, virtual_mic)
    finally:
        shutil.rmtree(work)


def _trace_runs(work: Path, allowed: set[str], mqtt_broker: MosquittoBroker, virtual_mic: VirtualMic) -> None:
    wav = synthetic_speech_wav(work / "speech.wav", (0, 1), seconds=1.0)
    mqtt = ["--mqtt-host", mqtt_broker.host, "--mqtt-port", str(mqtt_broker.port)]
    python = sys.executable  # the venv's: its realpath would be the system's, without the venv
    runs = {
        # a file through the durable spool, as an unprivileged user like the unit's (root's sqlite
        # chowns its journal; the service user's does not)
        "file": (["--file", str(wav), "--fast", "--state-dir", str(work / "state")],
                 ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []),
        # the microphone through PulseAudio, stopped by SIGTERM as systemctl stop does
        "mic": (["--rate", "48000"], []),
    }
    (work / "state").mkdir()
    (work / "state").chmod(0o777)
    for name, (args, as_user) in runs.items():
        trace = work / f"{name}.trace"
        cmd = ["strace", "-f", "-qq", "-o", str(trace), *as_user, python, "-m", "edge_ser", "run",
               "--stdout", *mqtt, *args]
        proc = subprocess.Popen(cmd, cwd=REPO, env=virtual_mic.env({**os.environ, "PYTHONPATH": str(REPO)}),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if name == "mic":
            time.sleep(4.0)  # start-up under strace, then a few hundred reads
            virtual_mic.play_and_wait(wav)
            (daemon,) = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            os.kill(int(daemon), signal.SIGTERM)  # as systemctl stop does
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        calls, wx = _traced(trace, python)
        assert calls - allowed == set(), f"{name} run: calls the unit's SystemCallFilter refuses"
        assert wx == [], f"{name} run: writable+executable mappings (MemoryDenyWriteExecute)"
        assert len(out.splitlines()) >= (2 if name == "file" else 1), err  # events: the run did its work
