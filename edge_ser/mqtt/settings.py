"""MQTT connection settings: a plain dataclass, so the config loader can build and check them
without importing paho, ssl or sqlite3."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MqttSettings:
    """Broker, identity, security and spool settings. Secrets are referenced, never embedded."""

    host: str = "127.0.0.1"
    port: int = 1883
    device_id: str = "edge-ser"
    prefix: str = "edge-ser"
    client_id: str | None = None  # default "edge-ser-<device_id>"
    keepalive: int = 30
    username: str | None = None
    password_file: str | None = None  # first line is the password; keeps it out of argv and logs
    password_env: str | None = None  # name of the environment variable holding the password
    tls: bool = False
    ca_file: str | None = None  # None with tls=True: the system's trusted CAs
    cert_file: str | None = None  # client certificate (mutual TLS)
    key_file: str | None = None
    tls_insecure: bool = False  # skip the broker hostname check (the chain is still verified)
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    spool_path: str | None = None  # SQLite file; None keeps the spool in memory only
    spool_max_events: int = 50_000  # past this the oldest events are dropped and counted
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
