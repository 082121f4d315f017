#!/usr/bin/env bash
# `make run`: the daemon on this machine, end to end, with what an MQTT subscriber sees printed.
#
# * A broker: the one at MQTT_HOST:MQTT_PORT (default 127.0.0.1:1883) if it answers, otherwise a
#   private mosquitto on loopback (that port if free, else a free one), removed again at the end.
# * Audio: the default microphone when there is one (Ctrl-C or DURATION=seconds ends it);
#   otherwise demo speech synthesised with espeak-ng (several voices and speeds) into a temp WAV,
#   played once at real-time pace, after which everything stops by itself.
# * Output: `mosquitto_sub -v` on the device's topics (events, retained state, status).
#
# Environment: MQTT_HOST, MQTT_PORT, DURATION, CONFIG (a profile TOML), MODEL (a .tflite), DEVICE_ID.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
HOST=${MQTT_HOST:-127.0.0.1}
PORT=${MQTT_PORT:-1883}
DEVICE_ID=${DEVICE_ID:-demo}
DURATION=${DURATION:-}
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

work=$(mktemp -d -t edge-ser-run.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

port_open() {  # host port -> 0 when something accepts TCP connections there
  "$PY" -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()' \
    "$1" "$2" 2>/dev/null
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- broker --------------------------------------------------------------------------------------
if port_open "$HOST" "$PORT"; then
  say "using the MQTT broker at $HOST:$PORT"
else
  HOST=127.0.0.1
  port_open "$HOST" "$PORT" && PORT=$(free_port)
  {
    echo "listener $PORT 127.0.0.1"
    echo "allow_anonymous true"
    echo "persistence false"
    [ "$(id -u)" = 0 ] && echo "user root"  # as the current user, not the mosquitto system user
  } > "$work/mosquitto.conf"
  "$MOSQUITTO" -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do port_open "$HOST" "$PORT" && break; sleep 0.1; done
  port_open "$HOST" "$PORT" || { cat "$work/mosquitto.log" >&2; echo "mosquitto did not start" >&2; exit 1; }
  say "started a private mosquitto on $HOST:$PORT (stopped again at the end)"
fi

# --- model ---------------------------------------------------------------------------------------
args=(--device-id "$DEVICE_ID" --mqtt-host "$HOST" --mqtt-port "$PORT")
[ -n "${CONFIG:-}" ] && args+=(--config "$CONFIG")
MODEL=${MODEL:-edge_ser/model/bundled/default.tflite}
if [ ! -f "$MODEL" ]; then
  say "no trained model at $MODEL yet: using the tiny TEST model (it knows tones, not emotions)"
  MODEL=tests/fixtures/tiny.tflite
fi
args+=(--model "$MODEL")

# --- audio ---------------------------------------------------------------------------------------
if "$PY" -m edge_ser devices --check; then
  say "listening on the default microphone${DURATION:+ for $DURATION s} (Ctrl-C to stop)"
else
  say "no audio input device: synthesising demo speech with espeak-ng"
  i=0
  while IFS='|' read -r voice speed text; do
    espeak-ng -v "$voice" -s "$speed" -w "$work/say$i.wav" "$text"
    i=$((i + 1))
  done <<'SENTENCES'
en-us|150|Good morning! I am so happy to see you today, this is wonderful news.
en-gb|120|I am really tired. Nothing went right, and I do not want to talk about it.
en-us+f3|190|Stop that right now! I told you three times already, this is unacceptable!
en-gb+m3|160|The meeting is at ten o'clock in the small room on the second floor.
SENTENCES
  # One file: the sentences at 16 kHz with a second of silence around each.
  "$PY" - "$work" <<'PY'
import sys
from pathlib import Path
import numpy as np
from edge_ser.audio.wavfile import load_audio, write_wav
work = Path(sys.argv[1])
gap = np.zeros(16000, dtype=np.float32)
parts = [gap]
for wav in sorted(work.glob("say*.wav")):
    parts += [load_audio(wav, 16000), gap]
demo = np.concatenate(parts)
write_wav(work / "demo.wav", demo, 16000)
print(f"demo speech: {len(demo) / 16000:.1f} s", file=sys.stderr)
PY
  args+=(--file "$work/demo.wav")
fi

# --- subscriber and daemon -------------------------------------------------------------------------
mosquitto_sub -h "$HOST" -p "$PORT" -v -t "edge-ser/$DEVICE_ID/#" &
pids+=($!)
sleep 0.3  # subscribed before the daemon says anything
say "edge-ser run ${args[*]}"
status=0
if [ -n "$DURATION" ]; then
  timeout -s INT "$DURATION" "$PY" -m edge_ser -v run "${args[@]}" || status=$?
  [ "$status" = 124 ] && status=0  # DURATION reached: the daemon was asked to stop
else
  "$PY" -m edge_ser -v run "${args[@]}" || status=$?
fi
sleep 0.5  # let the subscriber print the final state and "offline"
exit "$status"
