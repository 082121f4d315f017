"""The Recording tab's work without the window: a few seconds from a real (PulseAudio virtual)
microphone through the bundled model, and a one-line error for a file that is not there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_ser.errors import AudioFileError
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.monitor.recording import RecordingAnalyser, microphone_available
from tests.pulse_fixtures import VirtualMic


def test_records_from_the_virtual_microphone(virtual_mic: VirtualMic, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyaudio", reason="recording needs the 'mic' extra (PyAudio)")
    for key, value in virtual_mic.env().items():
        monkeypatch.setenv(key, value)
    assert microphone_available()
    analyser = RecordingAnalyser(DEFAULT_MODEL)
    signal = analyser.record(1.5)
    assert signal.dtype == np.float32 and len(signal) == 24000
    result = analyser.analyse_signal(signal, "microphone recording")
    assert result.duration_s == pytest.approx(1.5)
    assert result.utterances == []  # the virtual microphone hears nothing: no speech, no labels


def test_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=r"missing\.wav"):
        RecordingAnalyser(DEFAULT_MODEL).analyse_file(tmp_path / "missing.wav")
