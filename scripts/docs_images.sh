#!/usr/bin/env bash
# The README's pictures, made by the project itself: a timeline plot of espeak-ng speech drawn by
# `edge-ser predict --plot`, and the monitor window as its Xvfb test saves it (two devices fed
# through a real mosquitto). Needs espeak-ng, Xvfb, mosquitto and the dev extra (`make deps setup-dev`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
work=$(mktemp -d -t edge-ser-docs.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p docs/images

# Three sentences with pauses between them: the plot shows one labelled utterance each.
espeak-ng -v en -s 150 -w "$work/a.wav" "I cannot believe you did that again"
espeak-ng -v en+f3 -s 130 -w "$work/b.wav" "well, that is lovely news, thank you so much"
espeak-ng -v en -s 110 -p 30 -w "$work/c.wav" "I suppose it does not matter anymore"
sox -n -r 22050 -c 1 "$work/gap.wav" trim 0 1.2
sox "$work/gap.wav" "$work/a.wav" "$work/gap.wav" "$work/b.wav" "$work/gap.wav" "$work/c.wav" "$work/gap.wav" \
    "$work/talk.wav"
"$PY" -m edge_ser predict --timeline --plot docs/images/timeline.png "$work/talk.wav"

"$PY" -m pytest -q -p no:cacheprovider tests/test_monitor_window.py
cp build/test-artefacts/monitor_window.png docs/images/monitor_window.png
echo "wrote docs/images/timeline.png and docs/images/monitor_window.png"
