"""A real mosquitto broker on a free loopback port, for the tests and the daemon benchmark.

MQTT behaviour that matters here (retained messages, last wills, PUBACK timing, reconnects) is
exactly what mocks get wrong, so whatever talks MQTT is checked against a real broker.
``MosquittoBroker.stop()``/``start()`` restart it on the SAME port to simulate an outage.

Plain Python: a missing program raises ``ToolMissing`` and a wait that runs out raises
``AssertionError``; the pytest fixtures in tests/mqtt_fixtures.py turn the first into a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

WAIT_S = 10.0  # generous: the suite must pass on a loaded 2-core machine
_SBIN = "/usr/sbin:/usr/local/sbin"
INSTALL_HINT = "apt-get install mosquitto mosquitto-clients openssl"


class ToolMissing(RuntimeError):
    """A program a helper runs (mosquitto, mosquitto_passwd, openssl) is not installed."""


def require_tool(name: str) -> str:
    """Path of a program on PATH or in sbin (mosquitto lives in /usr/sbin, often not on a user's PATH)."""
    path = shutil.which(name) or shutil.which(name, path=_SBIN)
    if path is None:
        raise ToolMissing(f"{name} is not installed ({INSTALL_HINT})")
    return path


def wait_until(predicate: Callable[[], T], timeout: float = WAIT_S, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; raise AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsMaterial:
    """Files for a TLS + password broker; ``password_file`` is the *client's* plain-text secret."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    username: str
    password: str
    password_file: Path


def write_passwd(path: Path, users: Mapping[str, str]) -> Path:
    """Create a mosquitto password file (hashed) for ``users``."""
    for index, (user, password) in enumerate(users.items()):
        create = ["-c"] if index == 0 else []
        subprocess.run(
            [require_tool("mosquitto_passwd"), "-b", *create, str(path), user, password],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    return path


class MosquittoBroker:
    """A mosquitto process on 127.0.0.1:<free port>, restartable on the same port.

    ``users`` (username -> password) turns off anonymous access on a plain listener; ``acl_file``
    adds an ACL; ``tls`` makes the listener TLS-only with the material's single user.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        persistent: bool = False,
        tls: TlsMaterial | None = None,
        users: Mapping[str, str] | None = None,
        acl_file: Path | None = None,
    ) -> None:
        self._binary = require_tool("mosquitto")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls = tls
        self.log_file = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} {self.host}",
            f"persistence {'true' if persistent else 'false'}",
            f"persistence_location {workdir}/",
            # With persistence on, save after every change, so even a SIGKILLed broker keeps sessions.
            "autosave_on_changes true",
            "autosave_interval 1",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # otherwise it drops to the `mosquitto` user, who cannot read tmp files
        if tls is not None:
            lines += [f"cafile {tls.ca_file}", f"certfile {tls.cert_file}", f"keyfile {tls.key_file}"]
            lines += ["require_certificate false"]
            users = {tls.username: tls.password}
        self.users = dict(users or {})
        if self.users:
            lines += ["allow_anonymous false", f"password_file {write_passwd(workdir / 'passwd', self.users)}"]
        else:
            lines.append("allow_anonymous true")
        if acl_file is not None:
            lines.append(f"acl_file {acl_file}")
        self.conf.write_text("\n".join(lines) + "\n")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._proc is not None:
            return
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen([self._binary, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._accepting, what=f"mosquitto on port {self.port} (log: {self.log_file})")

    def _accepting(self) -> bool:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise AssertionError(f"mosquitto exited with {self._proc.returncode}:\n{self.log_text()}")
        try:
            socket.create_connection((self.host, self.port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Terminate cleanly (a persistent broker saves its database on SIGTERM)."""
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGCONT)  # in case it was frozen
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing is read or acknowledged (a hung broker)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def crash(self) -> None:
        """SIGKILL: whatever the broker had not processed is gone; start() brings it back."""
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait(timeout=WAIT_S)
        self._proc = None

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
