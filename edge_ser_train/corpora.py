"""Corpus loaders: each reads a corpus in its own distributed layout and yields Utterances.

Speakers come from each corpus's naming scheme (never from a split by file), prefixed with the
corpus name so that speaker 03 of EmoDB is not speaker 03 of RAVDESS when corpora are combined.
Loaders are forgiving about what real downloads do: folder and extension case, the TESS files
whose speaker prefix is mistyped (`OA_` instead of `OAF_`), files that parse as nothing (skipped
and logged, never guessed).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edge_ser_train.errors import TrainingError
from edge_ser_train.labels import canonical_label

log = logging.getLogger(__name__)
AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".ogg")


@dataclass(frozen=True)
class Utterance:
    path: Path
    label: str  # canonical emotion (edge_ser_train.labels.CANONICAL)
    speaker: str  # "<corpus>:<speaker id>"
    corpus: str


def corpus_of(speaker: str) -> str:
    """The corpus of a namespaced speaker ("emodb:03" -> "emodb"; every loader prefixes it)."""
    return speaker.split(":", 1)[0]


def audio_files(root: Path) -> list[Path]:
    """Every audio file under `root`, any extension case, in a stable order. A mistyped corpus
    path is refused here rather than read as a corpus without clips.

    Folders that are symbolic links are followed (a corpus assembled from links to a shared copy,
    `Actor_01 -> /data/ravdess/Actor_01`, is common; `Path.rglob` skips them before Python 3.13);
    a link back up the tree is entered once."""
    if not Path(root).is_dir():
        raise TrainingError(f"{root}: corpus folder not found")
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        found += [Path(folder) / name for name in files if Path(name).suffix.lower() in AUDIO_SUFFIXES]
    return sorted(p for p in found if p.is_file())


def _parsed(corpus: str, root: Path, parse: Callable[[Path], tuple[str, str] | None]) -> Iterator[Utterance]:
    skipped = 0
    for path in audio_files(root):
        parsed = parse(path)
        if parsed is None:
            skipped += 1
            continue
        label, speaker = parsed
        yield Utterance(path, label, f"{corpus}:{speaker}", corpus)
    if skipped:
        log.warning("%s: skipped %d files under %s whose names do not follow the corpus scheme",
                    corpus, skipped, root)


RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
_RAVDESS = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def _ravdess(path: Path) -> tuple[str, str] | None:
    m = _RAVDESS.match(path.stem)
    # modality 03 = audio-only, vocal channel 01 = speech; the actor is the last field.
    if not m or m[1] != "03" or m[2] != "01" or m[3] not in RAVDESS_EMOTIONS:
        return None
    return RAVDESS_EMOTIONS[m[3]], m[7]


CREMA_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral",
                  "SAD": "sad"}
_CREMA = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$", re.IGNORECASE)


def _crema_d(path: Path) -> tuple[str, str] | None:
    m = _CREMA.match(path.stem)
    if not m or m[3].upper() not in CREMA_EMOTIONS:
        return None
    return CREMA_EMOTIONS[m[3].upper()], m[1]


_TESS_FOLDER = re.compile(r"^([OY])[A-Z]*_(.+)$", re.IGNORECASE)


def _tess(path: Path) -> tuple[str, str] | None:
    # The folder (OAF_angry, YAF_pleasant_surprise, ...) is authoritative: some file names carry a
    # mistyped speaker prefix, and "ps" in file names is ambiguous without it.
    m = _TESS_FOLDER.match(path.parent.name)
    if not m:
        return None
    try:
        label = canonical_label(m[2])
    except TrainingError:
        return None
    return label, "OAF" if m[1].upper() == "O" else "YAF"


SAVEE_EMOTIONS = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral", "sa": "sad",
                  "su": "surprised"}
_SAVEE_FLAT = re.compile(r"^([A-Za-z]{2})_([a-z]{1,2})(\d\d)$")
_SAVEE_NESTED = re.compile(r"^([a-z]{1,2})(\d\d)$")


def _savee(path: Path) -> tuple[str, str] | None:
    # Two distributed layouts: ALL/DC_a01.wav and AudioData/DC/a01.wav.
    m = _SAVEE_FLAT.match(path.stem)
    if m:
        speaker, code = m[1].upper(), m[2]
    elif (n := _SAVEE_NESTED.match(path.stem)) and len(path.parent.name) == 2:
        speaker, code = path.parent.name.upper(), n[1]
    else:
        return None
    return (SAVEE_EMOTIONS[code], speaker) if code in SAVEE_EMOTIONS else None


EMODB_EMOTIONS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad",
                  "N": "neutral"}
_EMODB = re.compile(r"^(\d\d)([a-z]\d\d)([A-Z])([a-z])$")


def _emodb(path: Path) -> tuple[str, str] | None:
    m = _EMODB.match(path.stem)
    return (EMODB_EMOTIONS[m[3]], m[1]) if m and m[3] in EMODB_EMOTIONS else None


PARSERS: dict[str, Callable[[Path], tuple[str, str] | None]] = {
    "ravdess": _ravdess, "crema-d": _crema_d, "tess": _tess, "savee": _savee, "emodb": _emodb,
}


def load_corpus(corpus: str, root: str | Path) -> list[Utterance]:
    """Utterances of a corpus in its own layout (`corpus` is a key of PARSERS)."""
    if corpus not in PARSERS:
        raise TrainingError(f"unknown corpus {corpus!r}; known: {', '.join(PARSERS)} (or csv, folders)")
    return list(_parsed(corpus, Path(root), PARSERS[corpus]))


def load_csv(path: str | Path, corpus: str = "csv") -> list[Utterance]:
    """A manifest with a header `path,label,speaker`; relative paths are relative to the CSV file."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: CSV manifest not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    missing = {"path", "label", "speaker"} - set(reader.fieldnames or ())
    if missing:
        raise TrainingError(f"{path}: CSV manifest lacks column(s) {', '.join(sorted(missing))}")
    result = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            label = canonical_label(row["label"])
        except TrainingError as exc:
            raise TrainingError(f"{path} line {line}: {exc}") from None
        result.append(Utterance(path.parent / row["path"], label, f"{corpus}:{row['speaker'].strip()}", corpus))
    return result


def load_folders(root: str | Path, corpus: str = "folders",
                 speaker_pattern: str = r"^([^_\-]+)") -> list[Utterance]:
    """`root/<label>/<file>` layouts; the speaker is the first regex group of the file stem
    (default: the stem up to the first `_` or `-`), because CV by speaker needs one."""
    pattern = re.compile(speaker_pattern)
    result = []
    for path in audio_files(Path(root)):
        folder = path.relative_to(root).parts[0]
        match = pattern.search(path.stem)
        if match is None:
            raise TrainingError(f"{path}: speaker pattern {speaker_pattern!r} does not match the file name")
        try:
            label = canonical_label(folder)
        except TrainingError as exc:
            raise TrainingError(f"{Path(root) / folder}: the folder names the label: {exc}") from None
        result.append(Utterance(path, label, f"{corpus}:{match[1]}", corpus))
    return result


def load_source(spec: str) -> list[Utterance]:
    """`KIND=PATH`, e.g. `ravdess=/data/ravdess`, `csv=list.csv`, `folders=/data/mine`; a bare PATH
    is RAVDESS (the --data option of every training tool). A source without clips is refused: it
    is a wrong path or a wrong KIND, never a corpus to train on."""
    kind, sep, where = spec.partition("=")
    kind = kind.strip().lower() if sep else "ravdess"
    where = where if sep else spec
    if not where:
        raise TrainingError(f"data source {spec!r} must look like [KIND=]PATH (KIND: {', '.join(PARSERS)}, "
                            "csv, folders)")
    if kind == "csv":
        utterances = load_csv(where)
    elif kind == "folders":
        utterances = load_folders(where)
    else:
        utterances = load_corpus(kind, where)
    if not utterances:
        raise TrainingError(f"{spec}: no {kind} clips found under {where}")
    return utterances


def combine(sources: Iterable[list[Utterance]]) -> list[Utterance]:
    """Several corpora as one list; refuses a file listed twice (it would leak across folds)."""
    result: list[Utterance] = []
    seen: set[Path] = set()
    for utterances in sources:
        for u in utterances:
            key = u.path.resolve()
            if key in seen:
                raise TrainingError(f"{u.path} appears in more than one source")
            seen.add(key)
            result.append(u)
    return result
