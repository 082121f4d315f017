"""Non-speech never comes out as a confident emotion: generated tones, chirps, noise, music and knocks
through the real Recogniser and real models end up `uncertain`, while real and synthesised speech keeps
its label, chunk size makes no difference, and the measures are checked against hand-worked values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_ser.app.config import load_config
from edge_ser.app.predict import describe
from edge_ser.audio.wavfile import load_audio
from edge_ser.errors import ConfigError
from edge_ser.model.classifier import Classifier
from edge_ser.model.default import DEFAULT_MODEL
from edge_ser.recognise.labelling import UNCERTAIN, InferenceConfig, Labeller
from edge_ser.recognise.recogniser import Recogniser, UtteranceEnded, WindowScored, analyse
from edge_ser.recognise.speech_likeness import (
    SpeechCheckConfig,
    SpeechEvidence,
    longest_run,
    measure,
    peak_prominence,
    pitch_motion,
)
from edge_ser_testing.nonspeech import NON_SPEECH
from tests.audio_fixtures import ROOM_NOISE_DBFS, espeak_wav, ravdess_clip

SENTENCES = [("en", "Kids are talking by the door while the dogs are sitting by the window"),
             ("en-us", "I really did not expect to see you here today"),
             ("de", "Der Lappen liegt auf dem Eisschrank")]


@pytest.fixture(scope="module", params=["bundled", "tiny"])
def recogniser(request: pytest.FixtureRequest, tiny_model: Path) -> Recogniser:
    return Recogniser.from_manifest(Classifier(DEFAULT_MODEL if request.param == "bundled" else tiny_model))


@pytest.mark.parametrize("kind", sorted(NON_SPEECH))
def test_non_speech_is_never_a_confident_emotion(recogniser: Recogniser, kind: str) -> None:
    assert recogniser.classifier is not None
    labeller = Labeller(InferenceConfig(), recogniser.classifier.labels)
    for seed in range(2):
        clip = analyse(recogniser, NON_SPEECH[kind](seed))
        assert clip.windows, f"{kind}: the gate should open on it, or the test proves nothing"
        for utterance in clip.utterances:
            assert utterance.probabilities is not None
            assert labeller.verdict(utterance.probabilities, utterance.speech_like).label == UNCERTAIN, \
                f"{kind} seed {seed}: {[w.evidence for w in clip.windows]}"


def espeak_speech(tmp_path: Path, voice: str, text: str) -> np.ndarray:
    speech = load_audio(espeak_wav(tmp_path / f"{voice}.wav", text, voice=voice), 16000)
    noise = np.random.default_rng(0).standard_normal(len(speech)) * 10 ** (ROOM_NOISE_DBFS / 20)
    return (speech + noise).astype(np.float32)


@pytest.mark.parametrize("voice,text", SENTENCES)
def test_synthesised_speech_keeps_its_label(recogniser: Recogniser, tmp_path: Path, voice: str, text: str) -> None:
    clip = analyse(recogniser, espeak_speech(tmp_path, voice, text))
    assert clip.utterances and all(u.speech_like for u in clip.utterances), [w.evidence for w in clip.windows]


def test_recorded_speech_keeps_its_label(recogniser: Recogniser) -> None:
    names = ["Actor_01/03-01-05-02-01-01-01.wav", "Actor_02/03-01-01-01-01-01-02.wav",
             "Actor_08/03-01-04-01-02-01-08.wav", "Actor_15/03-01-06-02-01-02-15.wav"]
    paths = [ravdess_clip(name) for name in names]
    if any(p is None for p in paths):
        pytest.skip("RAVDESS is not in ../shared/data/ravdess (espeak-ng speech is tested above)")
    for path in paths:
        assert path is not None
        clip = analyse(recogniser, load_audio(path, 16000))
        assert clip.utterances and all(u.speech_like for u in clip.utterances), path


def outcome(recogniser: Recogniser, signal: np.ndarray, chunk: int) -> list[tuple]:
    recogniser.reset()
    return [(type(item).__name__, item.start, item.evidence, item.speech_like) if isinstance(item, WindowScored)
            else (type(item).__name__, item.start, item.speech_like) if isinstance(item, UtteranceEnded)
            else (type(item).__name__, item.start) for item in recogniser.run(signal, chunk)]


def test_the_check_is_chunk_size_invariant(recogniser: Recogniser, tmp_path: Path) -> None:
    speech = espeak_speech(tmp_path, *SENTENCES[0])
    signal = np.concatenate([NON_SPEECH["melody"](0), speech, NON_SPEECH["gliding_tone"](1)])
    reference = outcome(recogniser, signal, len(signal))  # the whole signal in one push: batch
    assert [row[2] for row in reference if row[0] == "UtteranceEnded"] == [False, True, False]
    for chunk in (160, 1000, 4096):
        assert outcome(recogniser, signal, chunk) == reference, f"chunk {chunk}"


def test_a_syllable_is_a_peak_and_a_step_is_not() -> None:
    # hand-worked: the peak 9 has the lowest points 1 (left, back to the edge) and 3 (right, up to
    # the higher 12): 9 - 3 = 6; 12 has nothing higher on either side, so its bases run to the
    # edges, lowest 1 on the left and 0 on the right: 12 - 1 = 11, the answer
    assert peak_prominence(np.array([2.0, 1, 9, 5, 3, 12, 4, 0])) == 11.0
    # with 8 instead of 12: 9 now reaches both edges (1 and 0): 8; the 8 is bounded by 9 (3) and 0: 5
    assert peak_prominence(np.array([2.0, 1, 9, 5, 3, 8, 4, 0])) == 8.0
    step = np.concatenate([np.full(50, -60.0), np.full(50, -20.0)])  # a tone starting: rises, never falls
    assert peak_prominence(step) == 0.0
    t = np.arange(200) * 0.01
    syllables = -30 + 10 * np.sin(2 * np.pi * 4 * t)  # 4 syllables a second, 20 dB from dip to peak
    evidence = measure(syllables, np.ones(200), np.zeros(200), 0.01)
    # a 5-frame moving average scales a 4 Hz sine by sin(5 pi f T) / (5 sin(pi f T)), T = 10 ms: 0.938
    smoothed = 20.0 * np.sin(5 * np.pi * 4 * 0.01) / (5 * np.sin(np.pi * 4 * 0.01))
    assert evidence.peak_prominence_db == pytest.approx(smoothed, abs=0.1)


def _prominence_by_definition(x: list[float]) -> float:
    """The definition spelled out, one peak at a time, scanning outwards: an independent oracle."""
    best = 0.0
    for i in range(1, len(x) - 1):
        if not (x[i] > x[i - 1] and x[i] >= x[i + 1]):
            continue
        bases = []
        for step in (-1, 1):
            j, lowest = i, x[i]
            while 0 <= j + step < len(x) and x[j + step] <= x[i]:
                j += step
                lowest = min(lowest, x[j])
            bases.append(lowest)
        best = max(best, x[i] - max(bases))
    return best


def test_peak_prominence_and_voiced_runs_agree_with_their_definitions() -> None:
    rng = np.random.default_rng(3)
    for trial in range(600):
        n = int(rng.integers(0, 220))
        # random walks, and coarse integer levels so that plateaus and equal peaks occur
        x = rng.normal(0, 4, n).cumsum() if trial % 2 else rng.integers(0, 4, n).astype(float)
        assert peak_prominence(x) == _prominence_by_definition(x.tolist()), x
        flags = rng.random(n) < rng.uniform(0, 1)
        runs = "".join("1" if f else "0" for f in flags).split("0")
        assert longest_run(flags) == max(map(len, runs)), flags


def test_pitch_motion_and_voiced_runs_on_hand_made_tracks() -> None:
    voicing = np.array([0.9, 0.9, 0.9, 0.1, 0.9, 0.9, 0.2, 0.8])
    log_f0 = np.array([0.0, 0.01, 0.04, 0.0, 0.5, 0.5, 0.0, 0.3])
    # adjacent voiced pairs: (0,1) 0.01, (1,2) 0.03, (4,5) 0.0 -> median 0.01
    assert pitch_motion(voicing, log_f0) == pytest.approx(0.01)
    assert pitch_motion(np.zeros(5), np.zeros(5)) == 0.0
    assert longest_run(voicing > 0.5) == 3
    evidence = SpeechEvidence(peak_prominence_db=10.0, pitch_motion=0.01, longest_voiced_run=3)
    assert not evidence.passes(SpeechCheckConfig())  # a 30 ms voiced stretch is a knock, not a vowel
    assert evidence.passes(SpeechCheckConfig(min_voiced_run_frames=3))


def test_disabled_in_the_device_config_a_tone_is_labelled_again(tiny_model: Path, tmp_path: Path) -> None:
    config = tmp_path / "device.toml"
    config.write_text("[speech_check]\nenabled = false\n")
    cfg = load_config(config)
    recogniser = Recogniser.from_manifest(Classifier(tiny_model), speech_check=cfg.speech_check)
    clip = analyse(recogniser, NON_SPEECH["gliding_tone"](0))
    assert clip.utterances and all(u.speech_like for u in clip.utterances)
    assert all(w.evidence is None for w in clip.windows)  # disabled costs nothing
    config.write_text("[speech_check]\nmin_voiced_run_frames = 0\n")
    with pytest.raises(ConfigError, match=r"device.toml: speech_check: .*min_voiced_run_frames >= 1"):
        load_config(config)


def test_predict_reports_a_tone_as_uncertain(tiny_model: Path) -> None:
    classifier = Classifier(tiny_model)
    clip = analyse(Recogniser.from_manifest(classifier), NON_SPEECH["chord"](0))
    result = describe(Path("chord.wav"), clip, classifier.labels, 16000, 4.0, timeline=True)
    assert result["label"] == UNCERTAIN and result["probabilities"]
    assert result["timeline"] and all(w["label"] == UNCERTAIN for w in result["timeline"])
