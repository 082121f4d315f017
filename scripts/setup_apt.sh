#!/usr/bin/env bash
# Install the Debian packages edge-ser needs, only when one is missing (fast on a set-up machine).
set -euo pipefail
# python3-tk: Tk for `edge-ser monitor` on Debian's Python; xvfb and tmux: its window and terminal view are tested in them.
# systemd (systemd-analyze) and strace: tests/test_systemd_unit.py checks the unit and traces the daemon against its filter.
packages=(python3-venv python3-dev gcc portaudio19-dev libasound2-plugins pulseaudio pulseaudio-utils
          alsa-utils mosquitto mosquitto-clients espeak-ng sox libsndfile1 openssl
          python3-tk xvfb tmux systemd strace)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
