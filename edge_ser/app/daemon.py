"""The listening loop: source -> pipeline -> events and retained state, with pause/resume and a
clean shutdown.

One thread does all audio work. The source yields at least every few hundred milliseconds (empty
chunks while nothing arrives), and each chunk is a tick at which the loop applies commands (set
by the MQTT thread), publishes the rate-limited state and notices a stop request. So there is no
lock around the pipeline, and a SIGTERM is honoured within one tick.

A listening session is one run of the pipeline chain (pipeline.segments/score/utterances) over
source chunks. Pausing ends the session and discards whatever it still produces: the segmenter
and front end start afresh on resume, and no audio is processed in between (chunks are read and
dropped so the capture queue does not overflow). Stopping also ends the session, but keeps the
flush of the segmenter, so the utterance being spoken becomes the last event.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from edge_ser.app.config import Config
from edge_ser.audio.pcm import as_float
from edge_ser.audio.source import AudioSource
from edge_ser.model.classifier import Classifier
from edge_ser.protocol.payloads import make_event, make_state
from edge_ser.recognise.labelling import Ema, Labeller, Verdict
from edge_ser.recognise.recogniser import ScoredWindow, UtteranceResult, score, segments, utterances, window_spec

STATE_INTERVAL_S = 0.5  # at most two state updates per second from the audio path
SEQ_FILE = "seq"

log = logging.getLogger("edge_ser.app.daemon")


class Publisher(Protocol):
    """What the daemon needs of mqtt_publisher.MqttPublisher."""

    def publish_event(self, event: dict[str, Any]) -> None: ...
    def publish_state(self, state: dict[str, Any]) -> None: ...
    def stats(self) -> dict[str, Any]: ...


class SequenceCounter:
    """Event sequence numbers, kept in the state directory so they keep increasing across restarts."""

    def __init__(self, state_dir: str | None) -> None:
        self._path = None if state_dir is None else Path(state_dir) / SEQ_FILE
        self.next = 0
        if self._path is not None and self._path.is_file():
            text = self._path.read_text().strip()
            self.next = int(text) if text.isdigit() else 0

    def take(self) -> int:
        seq, self.next = self.next, self.next + 1
        if self._path is not None:
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(str(self.next))
            os.replace(tmp, self._path)  # atomic: a crash leaves the old or the new number
        return seq


class Daemon:
    """Runs one device: call `run()` in the main thread; `stop()` and `handle_command()` from anywhere."""

    def __init__(self, cfg: Config, source: AudioSource, classifier: Classifier, *,
                 publisher: Publisher | None = None, stdout: TextIO | None = None) -> None:
        self.cfg, self.source, self.classifier = cfg, source, classifier
        self.publisher, self.stdout = publisher, stdout
        self.labeller = Labeller(cfg.inference, classifier.labels, origin=cfg.origin)
        self.spec = window_spec(classifier, cfg.model.hop_frames or None)
        self.features = classifier.manifest.features
        self.ema = Ema(cfg.inference.ema)
        self.seq = SequenceCounter(cfg.state.dir)
        self.events = 0
        self._stopping = threading.Event()
        self._paused = False
        self._discard = False  # the current session was ended by a pause: drop what it flushes
        self._source_ended = False
        self._chunks = source.chunks()
        self._samples = 0  # samples fed into the current session
        self._last_chunk_wall = time.time()
        self._state_due = False  # something changed that the state should show
        self._state_forced = False  # a change that is published at once (pause, source trouble)
        self._last_state = 0.0
        self._last_health: tuple[bool, str | None] = (True, None)

    # ------------------------------------------------------------------ control (any thread)

    def stop(self) -> None:
        """Finish the current utterance and shut down; safe from a signal handler."""
        self._stopping.set()
        self.source.close()

    def handle_command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """MQTT command handler (runs on the MQTT thread): flips flags the audio loop applies."""
        name = cmd["command"]
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
        while not (self._stopping.is_set() or self._source_ended):
            self._discard = False
            chain = utterances(score(segments(as_float(self._session()), self.features, self.cfg.gate,
                                              self.spec), self.classifier))
            for item in chain:
                if self._discard:
                    continue
                if isinstance(item, ScoredWindow):
                    self.ema.update(item.probabilities)
                    self._state_due = True
                elif isinstance(item, UtteranceResult):
                    self._emit(item)
            if self._paused and not self._stopping.is_set():
                self._idle_while_paused()
        self._publish_state()
        log.info("stopped after %d events", self.events)
        return 0

    def _session(self) -> Iterator[np.ndarray]:
        """Source chunks until a pause, a stop, or the end of the source."""
        self._samples = 0
        for chunk in self._chunks:
            self._tick()
            if self._stopping.is_set():
                return
            if self._paused:
                self._discard = True
                return
            self._samples += len(chunk)
            self._last_chunk_wall = time.time()
            yield chunk
        self._source_ended = True

    def _idle_while_paused(self) -> None:
        """Read and drop audio until resumed or stopped; the microphone stays open."""
        self.ema.reset()
        for _ in self._chunks:
            self._tick()
            if self._stopping.is_set() or not self._paused:
                return
        self._source_ended = True

    def _tick(self) -> None:
        health = (self.source.health.ok, self.source.health.error)
        if health != self._last_health:
            self._last_health = health
            self._state_forced = True
            if health[0]:
                log.warning("audio source recovered")
            else:
                log.warning("audio source: %s", health[1])
        now = time.monotonic()
        if self._state_forced or (self._state_due and now - self._last_state >= STATE_INTERVAL_S):
            self._publish_state()

    # ------------------------------------------------------------------ outputs

    def _emit(self, result: UtteranceResult) -> None:
        """One utterance -> one event on MQTT and/or stdout."""
        fs = self.features
        # Wall time of a session position: anchored at the newest chunk's arrival, so a live source
        # gets real times and a fast file source still gets true durations.
        session_now = self._samples / fs.sample_rate
        start = self._last_chunk_wall - (session_now - fs.frame_start(result.start))
        end = self._last_chunk_wall - (session_now - min(fs.frame_end(result.end), session_now))
        verdict = self.labeller.verdict(result.probabilities)
        event = make_event(device_id=self.cfg.device.id, seq=self.seq.take(), start=start, end=end,
                           label=verdict.label, confidence=verdict.confidence,
                           probabilities=verdict.probabilities, windows=result.windows,
                           model_name=self.classifier.manifest.name,
                           model_version=self.classifier.manifest.version, groups=verdict.groups)
        self.events += 1
        log.info("event seq=%d label=%s confidence=%.2f windows=%d", event["seq"], verdict.label,
                 verdict.confidence, result.windows)
        if self.publisher is not None:
            self.publisher.publish_event(event)
        if self.stdout is not None:
            self.stdout.write(json.dumps(event) + "\n")
            self.stdout.flush()
        self._state_due = True

    def state(self) -> dict[str, Any]:
        """The retained state as it is now."""
        verdict: Verdict | None = None if self.ema.value is None else self.labeller.verdict(self.ema.value)
        health = self.source.health
        stats = self.publisher.stats() if self.publisher is not None else {}
        return make_state(
            device_id=self.cfg.device.id,
            emotion=None if verdict is None else verdict.label,
            confidence=None if verdict is None else verdict.confidence,
            probabilities={} if verdict is None else verdict.probabilities,
            listening=health.ok and not (self._paused or self._stopping.is_set() or self._source_ended),
            paused=self._paused, model_name=self.classifier.manifest.name,
            model_version=self.classifier.manifest.version, source_ok=health.ok, source_error=health.error,
            overflows=health.overflows, spool_pending=stats.get("spool_pending", 0),
            spool_dropped=stats.get("spool_dropped", 0), timestamp=time.time())

    def _publish_state(self) -> None:
        self._state_due = self._state_forced = False
        self._last_state = time.monotonic()
        if self.publisher is not None:
            self.publisher.publish_state(self.state())
