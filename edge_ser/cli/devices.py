"""`edge-ser devices`: the audio inputs PortAudio sees, to pick `audio.device` by index or name.

`--check` answers scripts (scripts/run.sh) with the exit status only: 0 when the chosen (or
default) input device exists, 1 when there is none, e.g. on a server without a sound card.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="print nothing; exit 0 if the input device exists")
    p.add_argument("--device", metavar="NAME|INDEX", help="with --check: this device instead of the default")


def main(args: argparse.Namespace) -> int:
    from edge_ser.audio.mic import DeviceUnavailable, choose_device, import_pyaudio, input_devices
    from edge_ser.native_stderr import filtered_stderr

    pyaudio = import_pyaudio()
    with filtered_stderr():
        pa = pyaudio.PyAudio()
    try:
        devices = input_devices(pa)
    finally:
        pa.terminate()
    if args.check:
        try:
            choose_device(devices, args.device)
        except DeviceUnavailable:
            return 1
        return 0
    if not devices:
        print("no audio input devices found")
        return 1
    print(f"{'index':>5}  {'channels':>8}  {'rate':>6}  {'api':<6}  name")
    for d in devices:
        mark = "  (default)" if d.is_default else ""
        print(f"{d.index:>5}  {d.channels:>8}  {d.default_rate:>6}  {d.host_api:<6}  {d.name}{mark}")
    return 0
