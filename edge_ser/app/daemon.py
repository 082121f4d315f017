"""The listening loop: source chunks -> Recogniser -> events and retained state, with pause/resume
and a clean shutdown.

One thread does all audio work, in one flat loop over source chunks. The source yields at least
every few hundred milliseconds (empty chunks while nothing arrives), so each chunk is a tick at
which the loop, in this order: notices source health changes and publishes the rate-limited
state; honours a stop request; applies a pause (the Recogniser is reset on the transition, so
nothing heard before the pause is scored or reported, and chunks read while paused are dropped
so the capture queue does not overflow); pushes the chunk; and turns what it completed into the
smoothed state and events. At the end (stop, or the source ended) the utterance being spoken is
flushed and becomes the last event. Commands arrive on the MQTT thread and only flip flags that
the loop applies on its next tick, so there is no lock around the audio path.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Protocol, TextIO

from edge_ser.app.adaptation_store import AdaptationStore
from edge_ser.app.config import Config
from edge_ser.app.state_files import device_file, write_atomically
from edge_ser.audio.source import AudioSource
from edge_ser.errors import ConfigError
from edge_ser.model.classifier import Classifier
from edge_ser.protocol.payloads import MAX_EVENT_BYTES, largest_event_bytes, make_event, make_state
from edge_ser.recognise.labelling import Ema, Labeller, Verdict
from edge_ser.recognise.recogniser import Output, Recogniser, SampleClock, UtteranceEnded, WindowScored

SEQ_FILE = "seq"
# State fields that move with every scored window (the speaker adaptation counts every window's
# frames). A state differing from the last one published only in these is not a change worth a
# retained message; the next real change carries them.
CONTINUOUS_STATE_FIELDS = frozenset({"timestamp", "confidence", "probabilities", "adaptation"})

log = logging.getLogger("edge_ser.app.daemon")


class Publisher(Protocol):
    """What the daemon needs of edge_ser.mqtt.publisher.MqttPublisher."""

    def publish_event(self, event: dict[str, Any]) -> None: ...
    def publish_state(self, state: dict[str, Any]) -> None: ...
    def stats(self) -> dict[str, Any]: ...


class SequenceCounter:
    """Event sequence numbers per device id ("increases by one per event on this device"), kept in
    the state directory so they keep increasing across restarts. One file per id, since one state
    directory may serve runs under several ids; a file from before that (`seq`) seeds a new id's
    count, so an upgraded device never goes back to 0."""

    def __init__(self, state_dir: str | None, device_id: str) -> None:
        self._path = None if state_dir is None else device_file(state_dir, SEQ_FILE, device_id)
        self.next = 0
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            legacy = self._path.with_name(SEQ_FILE)
            for path in (self._path, legacy):
                if path.is_file():
                    text = path.read_text().strip()
                    self.next = int(text) if text.isdigit() else 0
                    break

    def take(self) -> int:
        seq, self.next = self.next, self.next + 1
        if self._path is not None:
            write_atomically(self._path, str(self.next))
        return seq


class EventRateLimit:
    """Token bucket over audio time: `burst` events at once, then `per_minute` per minute of audio.

    Audio time (sample positions), not the wall clock, so the limit is exact and the same for a
    microphone and a file replayed as fast as possible.
    """

    def __init__(self, per_minute: float, burst: int, sample_rate: int) -> None:
        self._per_sample = per_minute / (60.0 * sample_rate)
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = 0
        self.dropped = 0

    def allow(self, position: int) -> bool:
        """Whether an event ending at sample `position` may be sent; counts it when not."""
        self._tokens = min(self._burst, self._tokens + max(0, position - self._last) * self._per_sample)
        self._last = max(self._last, position)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.dropped += 1
        return False


class Daemon:
    """Runs one device: call `run()` in the main thread; `stop()` and `handle_command()` from anywhere."""

    def __init__(self, cfg: Config, source: AudioSource, classifier: Classifier, *,
                 publisher: Publisher | None = None, stdout: TextIO | None = None) -> None:
        self.cfg, self.source, self.classifier = cfg, source, classifier
        self.publisher, self.stdout = publisher, stdout
        try:
            self.recogniser = Recogniser.from_manifest(classifier, gate=cfg.gate,
                                                       hop_frames=cfg.model.hop_frames or None,
                                                       speech_check=cfg.speech_check)
        except ConfigError as exc:  # [gate] keys that do not fit with the model's other gate settings
            raise ConfigError(f"{cfg.origin}: {exc}") from None
        self.clock = SampleClock(classifier.manifest.features.sample_rate)
        self.labeller = Labeller(cfg.inference, classifier.labels, origin=cfg.origin)
        self.ema = Ema(cfg.inference.ema)
        self.seq = SequenceCounter(cfg.state.dir, cfg.device.id)
        adapter = self.recogniser.adapter
        self.adaptation = (None if adapter is None else
                           AdaptationStore(cfg.state.dir, cfg.device.id, adapter, classifier.manifest.sha256))
        if self.adaptation is not None:
            self.adaptation.load()
        self._forget_speaker = False  # reset_adaptation commanded (MQTT thread), applied by the loop
        self.rate_limit = EventRateLimit(cfg.limits.events_per_minute, cfg.limits.event_burst,
                                         classifier.manifest.features.sample_rate)
        self.events = 0
        # Samples the source has delivered, paused ones included: with the Recogniser's own count
        # (reset on pause) it places an utterance in a file or stdin stream, whose wall times crowd
        # together when it is read faster than real time. A microphone's wall times are the truth.
        self._stream_offsets = self._check_event_size(cfg, classifier)
        self._source_samples = 0
        self._stopping = threading.Event()
        self._paused = False  # as last commanded (MQTT thread)
        self._listening_paused = False  # as applied by the loop
        self._source_ended = False
        self._publisher_stats: dict[str, Any] = {}  # read on the loop's tick, never from a command
        self._state_due = False  # something changed that the state should show
        self._state_forced = False  # a change that is published at once (pause, source trouble)
        self._last_state = 0.0
        self._last_published: dict[str, Any] | None = None  # the state's non-continuous fields, as last sent
        self._last_health: tuple[bool, str | None] = (True, None)

    @staticmethod
    def _check_event_size(cfg: Config, classifier: Classifier) -> bool:
        """Whether events carry stream offsets; ConfigError if even events without them could
        exceed MAX_EVENT_BYTES with this device id, these label groups and this model.

        Stream offsets are the one part of an event that gives way: a file or stdin source read at
        its own pace has right wall times anyway, while a device id and groups are the user's
        choice, so a configuration that cannot fit is refused at start rather than in the field.
        """
        names: dict[str, Any] = dict(device_id=cfg.device.id, labels=classifier.labels,
                                     groups=list(cfg.inference.groups), model_name=classifier.manifest.name,
                                     model_version=classifier.manifest.version)
        largest = largest_event_bytes(**names, stream_offsets=False)
        if largest > MAX_EVENT_BYTES:
            spare = len(cfg.device.id.encode()) - (largest - MAX_EVENT_BYTES)
            raise ConfigError(
                f"{cfg.origin}: events could reach {largest} bytes, over the {MAX_EVENT_BYTES} the MQTT contract "
                f"allows: shorten device.id ({cfg.device.id!r}; at most {max(0, spare)} bytes fit with this model) "
                f"or the names in [inference.groups]")
        if cfg.audio.source == "mic":
            return False
        if largest_event_bytes(**names, stream_offsets=True) > MAX_EVENT_BYTES:
            log.info("events leave out stream_start/stream_end: with these label groups they would not fit in "
                     "%d bytes (wall-clock start/end are right unless the source is read faster than real time)",
                     MAX_EVENT_BYTES)
            return False
        return True

    # ------------------------------------------------------------------ control (any thread)

    def stop(self) -> None:
        """Finish the current utterance and shut down; safe from a signal handler."""
        self._stopping.set()
        self.source.close()

    def handle_command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """MQTT command handler (runs on the MQTT thread): flips flags the audio loop applies."""
        name = cmd["command"]
        if name == "reset_adaptation":
            if self.adaptation is None:
                return {"ok": False, "error": "this model does not adapt to its speaker", "state": self.state()}
            self._forget_speaker = True  # the loop publishes the state once it has applied it (_tick)
        if name in ("pause", "resume"):
            paused = name == "pause"
            if paused != self._paused:
                self._paused = paused
                self._state_forced = True
                log.info("%s by command", "paused" if paused else "resumed")
        return {"ok": True, "state": self.state()}

    # ------------------------------------------------------------------ main loop

    def run(self) -> int:
        log.info("listening: %s", self.source.describe())
        self._publish_state()
        for chunk in self.source.chunks():
            self._tick()
            if self._stopping.is_set():
                break
            if self._paused != self._listening_paused:
                self._apply_pause(self._paused)
            self._source_samples += len(chunk)
            if self._paused or not len(chunk):
                continue
            arrived = time.time()
            outputs = self.recogniser.push(chunk)
            self.clock.arrived(self.recogniser.samples, arrived)
            self._handle(outputs)
        else:
            self._source_ended = True
        if not self._listening_paused:
            self._handle(self.recogniser.flush())
        if self.adaptation is not None:
            self.adaptation.save(force=True)
        self._refresh_stats()
        self._publish_state()
        log.info("stopped after %d events (%d dropped by the rate limit)", self.events, self.rate_limit.dropped)
        return 0

    def _apply_pause(self, paused: bool) -> None:
        """Pause: forget the utterance in progress, unscored; the microphone stays open."""
        self._listening_paused = paused
        if paused:
            self.recogniser.reset()
            self.ema.reset()

    def _tick(self) -> None:
        if self._forget_speaker and self.adaptation is not None:
            self._forget_speaker = False
            self.adaptation.forget()
            # forced here, by the thread that applied the reset, so the next state shows the prior: forced from
            # the command thread, a tick between the two flags could publish before the reset and consume it
            self._state_forced = True
            log.info("speaker adaptation reset by command")
        health = (self.source.health.ok, self.source.health.error)
        if health != self._last_health:
            self._last_health = health
            self._state_forced = True
            if health[0]:
                log.warning("audio source recovered")
            else:
                log.warning("audio source: %s", health[1])
        before = self._publisher_stats.get("spool_degraded")
        self._refresh_stats()
        degraded = self._publisher_stats.get("spool_degraded")
        if degraded != before:
            # Events being lost (or no longer) is news for the state at once, like source trouble.
            self._state_forced = True
            if degraded:
                log.warning("events are being lost: %s", degraded)
            else:
                log.warning("events are no longer being lost")
        now = time.monotonic()
        if self._state_forced or (self._state_due and now - self._last_state >= self.cfg.limits.state_interval_s):
            self._publish_state(only_if_changed=not self._state_forced)

    def _refresh_stats(self) -> None:
        if self.publisher is not None:
            self._publisher_stats = self.publisher.stats()

    # ------------------------------------------------------------------ outputs

    def _handle(self, outputs: list[Output]) -> None:
        for item in outputs:
            if isinstance(item, WindowScored) and item.probabilities is not None and item.speech_like:
                self.ema.update(item.probabilities)
                self._state_due = True
            elif isinstance(item, UtteranceEnded) and item.probabilities is not None:
                self._emit(item)

    def _emit(self, utterance: UtteranceEnded) -> None:
        """One utterance -> one event on MQTT and/or stdout."""
        assert utterance.probabilities is not None
        if not self.rate_limit.allow(utterance.end):
            # Dropped before it is numbered, so seq stays contiguous for consumers.
            log.warning("event rate limit (%.0f per minute of audio, burst %d): dropped an utterance, %d so far",
                        self.cfg.limits.events_per_minute, self.cfg.limits.event_burst, self.rate_limit.dropped)
            return
        verdict = self.labeller.verdict(utterance.probabilities, utterance.speech_like)
        stream_start = stream_end = None
        if self._stream_offsets:
            origin = self._source_samples - self.recogniser.samples  # source sample the Recogniser counts from
            stream_start = (origin + utterance.start) / self.clock.sample_rate
            stream_end = (origin + utterance.end) / self.clock.sample_rate
        event = make_event(device_id=self.cfg.device.id, seq=self.seq.take(), start=self.clock.wall(utterance.start),
                           end=self.clock.wall(utterance.end), label=verdict.label, confidence=verdict.confidence,
                           probabilities=verdict.probabilities, windows=utterance.windows,
                           model_name=self.classifier.manifest.name,
                           model_version=self.classifier.manifest.version, groups=verdict.groups,
                           stream_start=stream_start, stream_end=stream_end)
        self.events += 1
        if self.adaptation is not None:
            self.adaptation.save()
        log.info("event seq=%d label=%s confidence=%.2f windows=%d", event["seq"], verdict.label,
                 verdict.confidence, utterance.windows)
        if self.publisher is not None:
            self.publisher.publish_event(event)
        if self.stdout is not None:
            self.stdout.write(json.dumps(event) + "\n")
            self.stdout.flush()
        self._state_due = True

    def state(self) -> dict[str, Any]:
        """The retained state as it is now (publisher figures as of the loop's last tick)."""
        verdict: Verdict | None = None if self.ema.value is None else self.labeller.verdict(self.ema.value)
        health = self.source.health
        stats = self._publisher_stats
        return make_state(
            device_id=self.cfg.device.id,
            emotion=None if verdict is None else verdict.label,
            confidence=None if verdict is None else verdict.confidence,
            probabilities={} if verdict is None else verdict.probabilities,
            listening=health.ok and not (self._paused or self._stopping.is_set() or self._source_ended),
            paused=self._paused, model_name=self.classifier.manifest.name,
            model_version=self.classifier.manifest.version, source_ok=health.ok, source_error=health.error,
            overflows=health.overflows, spool_pending=stats.get("spool_pending", 0),
            spool_dropped=stats.get("spool_dropped", 0),
            spool_degraded=stats.get("spool_degraded"),
            adaptation=None if self.recogniser.adapter is None else self.recogniser.adapter.summary(),
            timestamp=time.time())

    def _publish_state(self, only_if_changed: bool = False) -> None:
        """Publish the state, or with `only_if_changed` only when more than its continuous fields moved."""
        self._state_due = self._state_forced = False
        state = self.state()
        significant = {k: v for k, v in state.items() if k not in CONTINUOUS_STATE_FIELDS}
        if only_if_changed and significant == self._last_published:
            return
        self._last_state = time.monotonic()
        self._last_published = significant
        if self.publisher is not None:
            self.publisher.publish_state(state)
