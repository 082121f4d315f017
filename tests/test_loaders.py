"""Corpus loaders on generated trees that use each corpus's real naming, including its quirks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile

from edge_ser_train.audio import read_corpus_audio
from edge_ser_train.corpora import combine, load_corpus, load_csv, load_folders, load_source
from edge_ser_train.errors import TrainingError
from edge_ser_train.labels import CANONICAL, LABEL_SETS, LabelSet, canonical_label

SHARED = Path(__file__).parents[1].parent / "shared/data"
RAVDESS = SHARED / "ravdess"


def tone(seconds: float = 0.5, rate: int = 16000, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def touch(root: Path, relative: str, **write) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), write.pop("data", tone()), write.pop("rate", 16000), **write)
    return path


def labels_and_speakers(utterances) -> set[tuple[str, str, str]]:
    return {(u.path.name, u.label, u.speaker) for u in utterances}


def test_ravdess_layout_fields_and_foreign_files(tmp_path: Path) -> None:
    touch(tmp_path, "Actor_01/03-01-02-01-01-01-01.wav")
    touch(tmp_path, "actor_12/03-01-07-02-02-02-12.WAV")  # folder and extension in other case
    touch(tmp_path, "Actor_01/03-02-05-01-01-01-01.wav")  # song (vocal channel 02): not speech
    touch(tmp_path, "Actor_01/notes.wav")
    got = labels_and_speakers(load_corpus("ravdess", tmp_path))
    assert got == {("03-01-02-01-01-01-01.wav", "calm", "ravdess:01"),
                   ("03-01-07-02-02-02-12.WAV", "disgust", "ravdess:12")}


def test_crema_d_emodb_savee_names(tmp_path: Path) -> None:
    touch(tmp_path / "crema", "AudioWAV/1001_DFA_ANG_XX.wav")
    touch(tmp_path / "crema", "AudioWAV/1091_TSI_NEU_XX.wav")
    touch(tmp_path / "emodb", "wav/03a01Fa.wav")
    touch(tmp_path / "emodb", "wav/16b10Lb.wav")
    touch(tmp_path / "savee", "ALL/DC_a01.wav")
    touch(tmp_path / "savee", "ALL/JE_sa15.wav")
    touch(tmp_path / "savee", "AudioData/KL/su03.wav")  # the other distributed layout
    assert labels_and_speakers(load_corpus("crema-d", tmp_path / "crema")) == {
        ("1001_DFA_ANG_XX.wav", "angry", "crema-d:1001"), ("1091_TSI_NEU_XX.wav", "neutral", "crema-d:1091")}
    assert labels_and_speakers(load_corpus("emodb", tmp_path / "emodb")) == {
        ("03a01Fa.wav", "happy", "emodb:03"), ("16b10Lb.wav", "boredom", "emodb:16")}
    assert labels_and_speakers(load_corpus("savee", tmp_path / "savee")) == {
        ("DC_a01.wav", "angry", "savee:DC"), ("JE_sa15.wav", "sad", "savee:JE"),
        ("su03.wav", "surprised", "savee:KL")}


def test_tess_folder_case_and_mistyped_speaker_prefix(tmp_path: Path) -> None:
    touch(tmp_path, "OAF_angry/OAF_back_angry.wav")
    touch(tmp_path, "YAF_pleasant_surprise/YAF_bite_ps.wav")
    touch(tmp_path, "OAF_Pleasant_surprise/OA_bite_ps.wav")  # real TESS: other case, prefix typo
    touch(tmp_path, "yaf_Fear/YAF_dog_fear.wav")
    touch(tmp_path, "OAF_Fear/OAF_dog_fear.wav")  # the case of a public copy of the shared OAF folders
    assert labels_and_speakers(load_corpus("tess", tmp_path)) == {
        ("OAF_back_angry.wav", "angry", "tess:OAF"), ("YAF_bite_ps.wav", "surprised", "tess:YAF"),
        ("OA_bite_ps.wav", "surprised", "tess:OAF"), ("YAF_dog_fear.wav", "fearful", "tess:YAF"),
        ("OAF_dog_fear.wav", "fearful", "tess:OAF")}


def test_csv_manifest_and_folder_per_label(tmp_path: Path) -> None:
    touch(tmp_path, "clips/a.wav")
    (tmp_path / "list.csv").write_text("path,label,speaker\nclips/a.wav,Anger,spk7\n")
    [u] = load_csv(tmp_path / "list.csv")
    assert (u.path, u.label, u.speaker) == (tmp_path / "clips/a.wav", "angry", "csv:spk7")
    touch(tmp_path / "mine", "Happy/anna_001.wav")
    touch(tmp_path / "mine", "sad/bob-2.wav")
    assert labels_and_speakers(load_folders(tmp_path / "mine")) == {
        ("anna_001.wav", "happy", "folders:anna"), ("bob-2.wav", "sad", "folders:bob")}
    (tmp_path / "bad.csv").write_text("file,label\nx.wav,angry\n")
    with pytest.raises(TrainingError, match="speaker"):
        load_csv(tmp_path / "bad.csv")


def test_combined_sources_keep_speakers_apart_and_refuse_duplicates(tmp_path: Path) -> None:
    touch(tmp_path / "r", "Actor_03/03-01-05-01-01-01-03.wav")
    touch(tmp_path / "e", "wav/03a01Wa.wav")
    both = combine([load_source(f"ravdess={tmp_path / 'r'}"), load_source(f"emodb={tmp_path / 'e'}")])
    assert sorted(u.speaker for u in both) == ["emodb:03", "ravdess:03"]
    with pytest.raises(TrainingError, match="more than one source"):
        combine([load_corpus("emodb", tmp_path / "e"), load_corpus("emodb", tmp_path / "e")])


def test_label_sets_merge_and_drop() -> None:
    seven, four = LABEL_SETS["seven"], LABEL_SETS["four"]
    assert seven.index("calm") == seven.index("neutral") == 0
    assert four.index("fearful") is None and four.index("boredom") is None
    assert LABEL_SETS["ravdess8"].index("calm") == 1
    assert canonical_label("Pleasant_Surprise") == "surprised"
    with pytest.raises(TrainingError, match="unknown emotion"):
        canonical_label("contempt")


def test_boredom_is_dropped_unless_a_label_set_maps_it() -> None:
    for labels in LABEL_SETS.values():
        assert labels.index("boredom") is None, labels.name
    seven = LABEL_SETS["seven"]
    mapped = LabelSet("seven_bored", seven.labels, {"calm": "neutral", "boredom": "neutral"})
    assert mapped.index("boredom") == 0
    own_class = LabelSet("eight_bored", (*seven.labels, "boredom"), {"calm": "neutral"})
    assert own_class.index("boredom") == 7
    assert [own_class.index(c) is not None for c in CANONICAL] == [True] * len(CANONICAL)


@pytest.mark.parametrize(("labels", "merge", "drop", "problem"), [
    (("neutral", "happy"), {}, frozenset(), "unplaced ['angry', 'boredom'"),  # silent leftovers
    (("neutral",), {"calm": "neutral", "boredom": "neutral"}, frozenset(CANONICAL) - {"neutral", "calm"},
     "placed twice ['boredom']"),
    (("neutral",), {"calm": "relaxed"}, frozenset(CANONICAL) - {"neutral", "calm"}, "does not predict ['relaxed']"),
])
def test_a_label_set_must_place_every_canonical_label_once(labels: tuple[str, ...], merge: dict[str, str],
                                                           drop: frozenset[str], problem: str) -> None:
    with pytest.raises(TrainingError, match=re.escape(problem)):
        LabelSet("bad", labels, merge, drop)


@pytest.mark.parametrize("how", ["aiff_behind_wav", "float32", "stereo", "96k"])
def test_audio_quirks_read_as_mono_16k(tmp_path: Path, how: str) -> None:
    clean = tone(0.5, 16000, 440.0)
    if how == "aiff_behind_wav":
        path = touch(tmp_path, "x.wav", data=clean, format="AIFF", subtype="PCM_16")
    elif how == "float32":
        path = touch(tmp_path, "x.wav", data=clean, subtype="FLOAT")
    elif how == "stereo":
        path = touch(tmp_path, "x.wav", data=np.stack([clean, clean], axis=1), subtype="PCM_16")
    else:
        path = touch(tmp_path, "x.wav", data=tone(0.5, 96000, 440.0), rate=96000, subtype="PCM_24")
    audio = read_corpus_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) == len(clean)
    middle = slice(800, -800)  # resampling filters ring at the edges
    assert np.max(np.abs(audio[middle] - clean[middle])) < 2e-3


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"RAVDESS not found at {RAVDESS} (shared data absent)")
def test_real_ravdess_copy_has_20_actors_and_8_emotions() -> None:
    utterances = load_corpus("ravdess", RAVDESS)
    assert len(utterances) == 1200
    assert len({u.speaker for u in utterances}) == 20
    assert {u.label for u in utterances} == set(LABEL_SETS["ravdess8"].labels)


@pytest.mark.skipif(not (SHARED / "tess").is_dir(), reason=f"TESS not found at {SHARED / 'tess'} (shared data absent)")
def test_real_tess_copy_is_one_speaker_in_seven_emotions() -> None:
    utterances = load_source(f"tess={SHARED / 'tess'}")
    assert len(utterances) == 1400
    assert {u.speaker for u in utterances} == {"tess:OAF"}
    assert {u.label for u in utterances} == set(LABEL_SETS["seven"].labels)  # pleasant_surprise = surprised


@pytest.mark.skipif(not (SHARED / "emodb").is_dir(),
                    reason=f"EmoDB not found at {SHARED / 'emodb'} (shared data absent)")
def test_real_emodb_copy_has_five_speakers_and_boredom_to_drop() -> None:
    utterances = load_source(f"emodb={SHARED / 'emodb'}")
    assert len(utterances) == 243
    assert {u.speaker for u in utterances} == {"emodb:03", "emodb:08", "emodb:09", "emodb:10", "emodb:11"}
    bored = [u for u in utterances if u.label == "boredom"]
    assert len(bored) == 35 and all(u.path.stem[5] == "L" for u in bored)
    assert {u.label for u in utterances} - {"boredom"} == set(LABEL_SETS["seven"].labels) - {"surprised"}
