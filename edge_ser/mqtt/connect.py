"""What every edge-ser MQTT client does the same way: read the password, build the TLS context,
log in, and say in one line why a connection failed.

The daemon's publisher and the monitor's subscriber both connect with one ``MqttSettings``; doing it
here keeps a monitor on a TLS + password broker working exactly when the daemon does, and makes a
mistake in either (an unreadable password file, a missing CA) read the same.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from pathlib import Path

import paho.mqtt.client as mqtt

from edge_ser.errors import ConfigError
from edge_ser.mqtt.settings import MqttSettings

log = logging.getLogger("edge_ser.mqtt")


def read_password(s: MqttSettings) -> str | None:
    """The password from ``password_file`` (first line) or ``password_env``; None without one."""
    if s.password_file and s.password_env:
        raise ConfigError("set only one of MQTT password_file and password_env")
    password: str | None = None
    if s.password_file:
        try:
            text = Path(s.password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read MQTT password_file {s.password_file}: {exc.strerror}") from None
        password = text.splitlines()[0] if text else ""
    elif s.password_env:
        password = os.environ.get(s.password_env)
        if password is None:
            raise ConfigError(f"environment variable {s.password_env} (MQTT password_env) is not set")
    if password is not None and not s.username:
        raise ConfigError("an MQTT password is configured but no username")
    return password


def make_tls_context(s: MqttSettings) -> ssl.SSLContext:
    """The client TLS context: the given CA (or the system's), an optional client certificate."""
    if s.key_file and not s.cert_file:
        raise ConfigError("MQTT key_file is set without cert_file")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=s.ca_file)
        if s.cert_file:
            context.load_cert_chain(s.cert_file, s.key_file)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(
            f"{k}={v}"
            for k, v in (("ca_file", s.ca_file), ("cert_file", s.cert_file), ("key_file", s.key_file))
            if v
        )
        raise ConfigError(f"MQTT TLS setup failed ({files or 'system CAs'}): {exc}") from None
    if s.tls_insecure:
        # Only by explicit choice, and never quietly: without the name check any certificate the CA
        # signed (another device's, say) can impersonate the broker.
        log.warning("MQTT TLS hostname verification is OFF (tls_insecure = true): any certificate from "
                    "the CA is accepted as %s; use only for a broker whose certificate cannot name it", s.host)
        context.check_hostname = False
    return context


class Credentials:
    """Password and TLS context read once (at start, so a mistake is reported before any thread
    runs) and applied to each fresh paho client."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self.password = read_password(settings)
        self.tls_context = make_tls_context(settings) if settings.tls else None
        if settings.tls_insecure and not settings.tls:
            log.warning("MQTT tls_insecure is set but tls is off: the connection is not encrypted at all")
        if self.password is not None and not settings.tls:
            log.warning("MQTT password for %r is sent unencrypted (tls = false): anyone on the network path "
                        "can read it", settings.username)

    def apply(self, client: mqtt.Client) -> None:
        if self.settings.username:
            client.username_pw_set(self.settings.username, self.password)
        if self.tls_context is not None:
            client.tls_set_context(self.tls_context)


def refused_hint(s: MqttSettings) -> str:
    """What to check when the broker answers CONNACK with an error."""
    if s.username:
        return f"check username {s.username!r} and the password source"
    return "the broker may require a username and password"


def describe_connect_error(exc: Exception, s: MqttSettings) -> str:
    """Turn a connect exception into one line that says what to check."""
    where = f"{s.host}:{s.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate verification failed for {where}: {exc.verify_message or exc} "
            f"(check ca_file={s.ca_file} and that the broker certificate names {s.host})"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed: {exc.reason or exc} (does the broker speak TLS on this port?)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {where} refused (is the broker running and listening there?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve MQTT host {s.host!r}: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return f"timed out connecting to {where}"
    return f"cannot connect to {where}: {exc}"
