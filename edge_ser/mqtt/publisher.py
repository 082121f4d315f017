"""MQTT side of the daemon: status, retained state, durable events, commands, HA discovery.

Topics (docs/DESIGN.md §7, MQTT contract), with ``<base> = <prefix>/<device_id>``:
``<base>/status`` retained ``online``/``offline`` (``offline`` is also the last will),
``<base>/state`` retained JSON, ``<base>/event`` JSON per utterance, ``<base>/cmd`` in,
``<base>/cmd/result`` out, and Home Assistant discovery under ``<discovery_prefix>/…/config``.

Design, and why:

* **Events go through the SQLite spool** (``edge_ser.mqtt.spool``) before any send and leave it only on
  PUBACK, so the audio thread never waits on the network and nothing accepted is lost to an
  outage or a restart (up to the spool bound).
* **One paho client per connection.** A connector thread connects, runs that client's network
  loop until the connection ends, backs off (capped exponential), and builds a fresh client. Paho's
  own reconnect would re-send its in-memory queue *after* anything published from ``on_connect``
  and race with new publishes, breaking order; a fresh client has no queue, so every connection
  starts cleanly from the oldest unacknowledged spool row. It also lets the connector catch
  connect exceptions itself and log *why* (refused, TLS verification, DNS) instead of paho's
  silent retry.
* **One sender thread owns the in-flight window** (at most ``INFLIGHT`` events, mapped message
  id -> spool row). ``on_publish`` only enqueues the acknowledged id; the sender matches it. No
  lock of ours is ever held while paho holds its own message lock, so there is no lock-order
  deadlock, and an acknowledgement that races ahead of the bookkeeping is simply processed on
  the sender's next turn.
* Delivery is at-least-once: an event sent just before a connection dropped is sent again on the
  next one. Consumers drop duplicates by ``event_id``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_ser.errors import ConfigError
from edge_ser.mqtt.connect import Credentials, describe_connect_error, refused_hint
from edge_ser.mqtt.discovery import discovery_messages
from edge_ser.mqtt.settings import MqttSettings
from edge_ser.mqtt.spool import Spool
from edge_ser.protocol.commands import CommandError, parse_command
from edge_ser.protocol.payloads import CMD_RESULT_SCHEMA, compact_json, make_cmd_result

LOGGER_NAME = "edge_ser.mqtt"

# Events awaiting PUBACK at once: enough to keep a link busy during a drain, small enough that
# a dropped connection re-sends little.
INFLIGHT = 20

# Messages paho may hold for one connection (in flight and queued): the event window, a state,
# discovery configs and command results, with room to spare. When a broker stops reading (frozen,
# or a link that stalls without closing), publishing past it fails at once instead of growing
# memory: events stay in the spool for the next connection, a state is re-sent on connect, and
# a command result is lost (the sender may ask again).
MAX_QUEUED = 200

# How often the sender re-checks the connection when nothing wakes it (a safety net only).
_SENDER_POLL_S = 0.5

CommandHandler = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(eq=False)
class _Connection:
    """One paho client and what is known about its single connection attempt."""

    client: mqtt.Client
    generation: int
    looping: bool = False  # its network thread is running
    accepted: bool = False  # the broker sent a successful CONNACK
    connected: bool = False  # accepted and not yet disconnected
    refused: bool = False  # the broker answered CONNACK with an error
    closed: threading.Event = field(default_factory=threading.Event)


class MqttPublisher:
    """Publishes one device's status, state and events, and answers its commands.

    Thread-safe: ``publish_event``/``publish_state`` may be called from any thread, before or
    after ``start()``; nothing here blocks on the network or raises because the broker is away.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        model_name: str,
        model_version: str,
        labels: list[str],
        groups: list[str] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        _check_topic_level("prefix", settings.prefix, allow_slash=True)
        _check_topic_level("device_id", settings.device_id, allow_slash=False)
        _check_topic_level("discovery_prefix", settings.discovery_prefix, allow_slash=True)
        if settings.reconnect_min_s <= 0 or settings.reconnect_max_s < settings.reconnect_min_s:
            raise ConfigError("MQTT reconnect delays need 0 < reconnect_min_s <= reconnect_max_s")
        self.settings = settings
        self._log = logger or logging.getLogger(LOGGER_NAME)
        self._client_id = settings.client_id or f"edge-ser-{settings.device_id}"
        self.base_topic = f"{settings.prefix}/{settings.device_id}"
        self.status_topic = f"{self.base_topic}/status"
        self.state_topic = f"{self.base_topic}/state"
        self.event_topic = f"{self.base_topic}/event"
        self.cmd_topic = f"{self.base_topic}/cmd"
        self.cmd_result_topic = f"{self.base_topic}/cmd/result"
        self.ha_status_topic = f"{settings.discovery_prefix}/status"
        self._discovery = (
            discovery_messages(
                base_topic=self.base_topic,
                device_id=settings.device_id,
                discovery_prefix=settings.discovery_prefix,
                labels=labels,
                groups=groups or (),
                model_name=model_name,
                model_version=model_version,
            )
            if settings.discovery
            else []
        )
        try:
            self._spool = Spool(settings.spool_path, settings.spool_max_events)
        except (OSError, sqlite3.Error) as exc:  # not a corrupt file (that is set aside): a path or a full disk
            raise ConfigError(f"cannot open the event spool {settings.spool_path}: {exc}") from None
        self._handler: CommandHandler | None = None
        self._credentials: Credentials | None = None

        self._conn_lock = threading.Lock()  # guards _conn and its flags
        self._conn: _Connection | None = None
        # Held across publishing the state so that, after a reconnect, the newest state is the
        # last one sent (it is what the broker retains).
        self._state_lock = threading.Lock()
        self._state_payload: str | None = None
        # Sender wake-ups: None ("look again") or (generation, mid) for a PUBACK.
        self._wake: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._drained = threading.Condition()  # notified when acknowledged rows leave the spool
        self._published = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failures = 0  # consecutive failed connection attempts
        self._last_failure: str | None = None

    # ------------------------------------------------------------------ public API

    def start(self) -> None:
        """Start connecting in the background; returns at once.

        Raises ``ConfigError`` only for local mistakes (unreadable password file, missing TLS
        files); broker trouble of any kind is logged and retried forever.
        """
        if self._threads:
            return
        self._credentials = Credentials(self.settings)
        self._threads = [
            threading.Thread(target=self._run_connector, name="edge-ser-mqtt-connect", daemon=True),
            threading.Thread(target=self._run_sender, name="edge-ser-mqtt-send", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def publish_event(self, event: dict[str, Any]) -> None:
        """Spool one event (durably) and let the sender deliver it; never waits for the broker.

        Raises ``ValueError`` for an event without a string ``event_id`` or that is not strict JSON
        (NaN): those are bugs upstream, and a poisoned row would block the queue forever.
        """
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            raise ValueError("event needs a non-empty string 'event_id'")
        payload = compact_json(event)
        try:
            self._spool.append(event_id, payload)
        except sqlite3.Error as exc:
            self._log.error("could not spool event %s, it is lost: %s", event_id, exc)
            return
        self._wake.put(None)

    def publish_state(self, state: dict[str, Any]) -> None:
        """Publish the retained state now if connected; remembered and re-sent on every connect.

        Like ``publish_event``, raises ``ValueError`` for a state that is not strict JSON (NaN).
        """
        payload = compact_json(state)
        with self._state_lock:
            self._state_payload = payload
            conn = self._connected()
            if conn is not None:
                conn.client.publish(self.state_topic, payload, qos=1, retain=True)

    def set_command_handler(self, handler: CommandHandler) -> None:
        """Install the function answering commands.

        It receives ``{"command": "pause"|"resume"|"status", "id": ...}`` (aliases already
        resolved) on the MQTT network thread, so it must be quick. It returns a dict merged into
        the result, typically ``{"ok": True, "state": {...}}`` or ``{"ok": False, "error": "..."}``.
        """
        self._handler = handler

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self._connected() is not None,
            "spool_pending": self._spool.pending(),
            "spool_dropped": self._spool.dropped(),
            "spool_degraded": self._spool.degraded(),
            "published": self._published,
        }

    def flush(self, timeout: float) -> bool:
        """Wait until every spooled event is acknowledged; False if ``timeout`` ran out first."""
        with self._drained:
            return self._drained.wait_for(lambda: self._spool.pending() == 0, timeout)

    def stop(self, timeout: float = 1.5) -> None:
        """Best-effort flush, retained ``offline``, clean disconnect, all within about ``timeout``.

        Unacknowledged events stay in the spool file for the next start. Calling it again is a no-op.
        """
        if self._stopping.is_set():
            return
        deadline = time.monotonic() + timeout
        if self._connected() is not None:
            # Keep a slice of the budget for the offline message and the disconnect.
            self.flush(max(0.0, timeout - min(0.5, timeout / 3)))
        self._stopping.set()
        self._wake.put(None)
        with self._conn_lock:
            conn = self._conn
            looping = conn is not None and conn.looping
            connected = conn is not None and conn.connected
        if conn is not None and looping:
            if connected:
                info = conn.client.publish(self.status_topic, "offline", qos=1, retain=True)
                # If the connection went away meanwhile, the last will says offline instead.
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(max(0.05, deadline - time.monotonic()))
            conn.client.disconnect()
            conn.closed.set()
        if not self._threads:
            self._spool.close()
            return
        connector, sender = self._threads
        # The sender only does local work and exits at once; the spool must outlive it.
        sender.join(max(1.0, deadline - time.monotonic()))
        if sender.is_alive():
            self._log.warning("MQTT sender thread did not stop; leaving the spool open")
        else:
            self._spool.close()
        # The connector may sit in a TCP/TLS connect for up to paho's connect timeout; it is a
        # daemon thread and touches nothing of ours once stopping is set, so it is not waited for long.
        connector.join(max(0.1, deadline - time.monotonic()))

    # ------------------------------------------------------------------ configuration

    def _new_connection(self, generation: int) -> _Connection:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,  # the connector owns reconnection (see module docstring)
        )
        conn = _Connection(client, generation)
        client.user_data_set(conn)
        client.max_inflight_messages_set(INFLIGHT)
        client.max_queued_messages_set(MAX_QUEUED)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        assert self._credentials is not None  # start() reads them before any connection
        self._credentials.apply(client)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.message_callback_add(self.cmd_topic, self._on_command)
        if self._discovery:
            client.message_callback_add(self.ha_status_topic, self._on_ha_status)
        return conn

    # ------------------------------------------------------------------ threads

    def _run_connector(self) -> None:
        """Connect, serve the connection until it ends, back off, repeat until stop()."""
        s = self.settings
        delay = s.reconnect_min_s
        generation = 0
        while not self._stopping.is_set():
            generation += 1
            conn = self._new_connection(generation)
            with self._conn_lock:
                self._conn = conn
            try:
                conn.client.connect(s.host, s.port, s.keepalive)
            except (OSError, ValueError) as exc:  # socket, DNS and TLS errors (CertificateError is a ValueError)
                self._note_failure(describe_connect_error(exc, s))
            else:
                with self._conn_lock:  # stop() reads `looping` under this lock to decide who disconnects
                    stopping = self._stopping.is_set()
                    if not stopping:
                        conn.client.loop_start()
                        conn.looping = True
                if stopping:
                    conn.client.disconnect()
                    break
                conn.closed.wait()
                conn.client.loop_stop()
                if conn.accepted:
                    delay = s.reconnect_min_s
            if self._stopping.wait(delay):
                break
            delay = min(delay * 2, s.reconnect_max_s)

    def _run_sender(self) -> None:
        """Keep up to INFLIGHT spooled events in flight on the current connection, in order."""
        inflight: dict[int, int] = {}  # mid -> spool row id, for the current generation only
        generation = 0
        cursor = 0  # highest row id handed to the current connection
        while not self._stopping.is_set():
            acks = self._next_wakeups()
            with self._conn_lock:
                conn = self._conn
                connected = conn is not None and conn.connected
            if conn is not None and conn.generation != generation:
                # A fresh connection has no session: resend everything unacknowledged, oldest first.
                inflight.clear()
                cursor = 0
                generation = conn.generation
            done = [inflight.pop(mid) for gen, mid in acks if gen == generation and mid in inflight]
            if done:
                self._spool.remove(done)
                with self._drained:
                    self._published += len(done)
                    self._drained.notify_all()
            if not connected or conn is None or len(inflight) >= INFLIGHT:
                continue
            for row in self._spool.peek(cursor, INFLIGHT - len(inflight)):
                info = conn.client.publish(self.event_topic, row.payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break  # the connection is going away; the next one starts over from the spool
                inflight[info.mid] = row.row_id
                cursor = row.row_id

    def _next_wakeups(self) -> list[tuple[int, int]]:
        """Block until something happens (or the poll interval passes); return the PUBACKs seen."""
        items: list[tuple[int, int] | None] = []
        try:
            items.append(self._wake.get(timeout=_SENDER_POLL_S))
            while True:
                items.append(self._wake.get_nowait())
        except queue.Empty:
            pass
        return [item for item in items if item is not None]

    # ------------------------------------------------------------------ paho callbacks

    def _connected(self) -> _Connection | None:
        with self._conn_lock:
            conn = self._conn
            return conn if conn is not None and conn.connected else None

    def _on_connect(
        self, client: mqtt.Client, conn: _Connection, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        where = f"{self.settings.host}:{self.settings.port}"
        if reason.is_failure:
            conn.refused = True
            self._note_failure(f"broker {where} refused the connection: {reason} ({refused_hint(self.settings)})")
            return
        if self._failures:
            self._log.info("connected to MQTT broker %s after %d failed attempt(s)", where, self._failures)
        else:
            self._log.info("connected to MQTT broker %s as %s", where, self._client_id)
        self._failures = 0
        self._last_failure = None
        with self._conn_lock:
            conn.accepted = conn.connected = True
        client.publish(self.status_topic, "online", qos=1, retain=True)
        with self._state_lock:
            if self._state_payload is not None:
                client.publish(self.state_topic, self._state_payload, qos=1, retain=True)
        self._send_discovery(client)
        topics = [(self.cmd_topic, 1)] + ([(self.ha_status_topic, 1)] if self._discovery else [])
        client.subscribe(topics)
        self._wake.put(None)

    def _on_disconnect(
        self, client: mqtt.Client, conn: _Connection, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        with self._conn_lock:
            was_connected = conn.connected
            conn.connected = False
        if self._stopping.is_set():
            pass
        elif was_connected:
            self._log.warning(
                "lost MQTT connection to %s:%s (%s); events are spooled until it is back",
                self.settings.host,
                self.settings.port,
                reason,
            )
        elif not conn.accepted and not conn.refused:
            self._note_failure(
                f"broker {self.settings.host}:{self.settings.port} closed the connection before answering "
                f"(TLS mismatch? tls={self.settings.tls})"
            )
        conn.closed.set()

    def _on_publish(self, client: mqtt.Client, conn: _Connection, mid: int, reason: Any, properties: Any) -> None:
        # Runs while paho holds its message lock: only hand the id over, touch nothing of ours.
        self._wake.put((conn.generation, mid))

    def _on_command(self, client: mqtt.Client, conn: _Connection, message: mqtt.MQTTMessage) -> None:
        if message.retain:
            # A retained command would be replayed on every reconnect (e.g. pause forever).
            self._log.warning("ignoring retained message on %s; commands must not be retained", message.topic)
            return
        client.publish(self.cmd_result_topic, self._answer(message.payload), qos=1)

    def _answer(self, payload: bytes | bytearray) -> str:
        """Run one command and return the JSON result; every failure becomes an error result."""
        try:
            cmd = parse_command(payload)
        except CommandError as exc:
            self._log.warning("bad command on %s: %s", self.cmd_topic, exc)
            return json.dumps(make_cmd_result(command=exc.command, ok=False, error=str(exc), cmd_id=exc.cmd_id))
        envelope = {"schema": CMD_RESULT_SCHEMA, "id": cmd["id"], "command": cmd["command"]}
        if self._handler is None:
            return json.dumps({**envelope, "ok": False, "error": "no command handler installed"})
        try:
            answer = self._handler(dict(cmd))
            if not isinstance(answer, dict):
                raise TypeError(f"command handler returned {type(answer).__name__}, not a dict")
            result = {"ok": True, "error": None, **answer, **envelope}
            if not result["ok"] and not result["error"]:
                result["error"] = "command failed"
            return json.dumps(result)
        except Exception as exc:  # a handler bug must not kill the MQTT network thread
            self._log.exception("command %r failed", cmd["command"])
            return json.dumps({**envelope, "ok": False, "error": f"command handler failed: {exc}"})

    def _on_ha_status(self, client: mqtt.Client, conn: _Connection, message: mqtt.MQTTMessage) -> None:
        # Home Assistant announces "online" after a restart; it has forgotten nothing retained,
        # but brokers without persistence have, so the configs are sent again.
        if message.payload == b"online":
            self._send_discovery(client)

    def _send_discovery(self, client: mqtt.Client) -> None:
        for topic, config in self._discovery:
            client.publish(topic, json.dumps(config), qos=1, retain=True)

    def _note_failure(self, reason: str) -> None:
        """Log a failed attempt: loudly when the reason is new, quietly while it repeats."""
        self._failures += 1
        if reason != self._last_failure:
            self._log.error("MQTT: %s; retrying with backoff up to %.0f s", reason, self.settings.reconnect_max_s)
            self._last_failure = reason
        else:
            self._log.debug("MQTT connection attempt %d failed: %s", self._failures, reason)


def _check_topic_level(name: str, value: str, *, allow_slash: bool) -> None:
    bad = not value or any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/")
    if bad or (not allow_slash and "/" in value):
        what = "topic levels" if allow_slash else "a single topic level"
        raise ConfigError(f"MQTT {name} {value!r} must be {what} without '+', '#' or leading/trailing '/'")
