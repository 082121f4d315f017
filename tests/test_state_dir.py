"""Where `edge-ser run` keeps its spool and sequence numbers when a profile's state directory (the
systemd service's /var/lib/edge-ser) is not usable by the user running it ad hoc."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.daemon_process import TINY_MODEL, synthetic_speech_wav

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    wav = synthetic_speech_wav(tmp_path / "speech.wav", (0,), seconds=1.0)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg")}
    return subprocess.run([sys.executable, "-m", "edge_ser", "run", "--model", str(TINY_MODEL), "--file", str(wav),
                           "--fast", "--no-mqtt", "--stdout", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_profiles_unusable_state_dir_falls_back_to_the_per_user_one_with_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory's parent should be")  # unusable even for root
    profile = tmp_path / "profile.toml"
    profile.write_text(f'[device]\nid = "kitchen"\n[state]\ndir = "{blocker / "edge-ser"}"\n')
    result = _run(tmp_path, "--config", str(profile))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1  # the event
    (warning,) = [line for line in result.stderr.splitlines() if "level=warning" in line]
    assert f"state.dir {blocker / 'edge-ser'} from {profile}: Not a directory" in warning
    assert str(tmp_path / "xdg" / "edge-ser") in warning
    assert (tmp_path / "xdg" / "edge-ser" / "seq.kitchen").read_text() == "1"


def test_a_state_dir_given_on_the_command_line_is_used_or_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = _run(tmp_path, "--state-dir", str(blocker / "state"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"edge-ser: error: command line: state.dir: cannot use {blocker / 'state'}: " \
                                    "Not a directory"
    assert not (tmp_path / "xdg").exists()
