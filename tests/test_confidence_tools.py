"""The measuring tools behind the confidence figures, on small generated corpora in label folders:
espeak-ng speech keeps its label and generated non-speech does not (speech_check); each corpus gets a
temperature from the other and ECE before/after (calibration_check); mistakes are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_ser.audio.wavfile import load_audio, write_wav
from edge_ser_train import calibration_check, speech_check
from tests.audio_fixtures import ROOM_NOISE_DBFS, espeak_wav

TEXTS = {"neutral": "The table is next to the window in the kitchen",
         "angry": "I told you not to touch my things ever again",
         "happy": "What a wonderful surprise to see all of you here"}


def corpus(root: Path, voice: str) -> Path:
    """root/<label>/<speaker>_<n>.wav: espeak-ng sentences with room noise (no digital zeros)."""
    for label, text in TEXTS.items():
        (root / label).mkdir(parents=True)
        for n, speed in enumerate((140, 170)):
            wav = espeak_wav(root / label / f"raw{n}.wav", text, voice=voice, speed=speed)
            speech = load_audio(wav, 16000)
            noise = np.random.default_rng(n).standard_normal(len(speech)) * 10 ** (ROOM_NOISE_DBFS / 20)
            write_wav(root / label / f"{voice}_{n}.wav", (speech + noise).astype(np.float32), 16000)
            wav.unlink()
    return root


def test_speech_check_keeps_speech_and_refuses_non_speech(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = f"folders={corpus(tmp_path / 'en', 'en')}"
    result = speech_check.measure(speech_check.DEFAULT_MODEL, [data], seeds=1)
    speech = result["speech"]["folders"]
    assert speech["clips"] == 6 and speech["utterances"] >= 6 and speech["fraction"] == 1.0
    assert all(r["utterances"] >= 1 and r["speech_like"] == 0 for r in result["nonspeech"].values())


def test_calibration_check_cross_fits_and_explains_mistakes(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    en, de = (f"folders={corpus(tmp_path / v, v)}" for v in ("en", "de"))
    result = calibration_check.measure(calibration_check.DEFAULT_MODEL, [en, de])
    assert len(result["folds"]) == 2 and 0.05 <= result["temperature"] <= 20
    for fold in result["folds"]:  # a T fitted on the other corpus never makes its own NLL infinite or NaN
        assert np.isfinite([fold["ece_before"], fold["ece_after"], fold["nll_after"]]).all()
    assert calibration_check.main(["--data", en]) == 2
    assert "edge-ser-calibration-check: error: give at least two --data corpora" in capsys.readouterr().err
