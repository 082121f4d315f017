"""Filter what native libraries (LiteRT, PortAudio, ALSA) print straight onto file descriptor 2.

They bypass Python's logging, so the daemon's journal and `predict`'s output fill with lines such
as "INFO: Created TensorFlow Lite XNNPACK delegate" or ALSA's probing of absent devices. This
captures fd 2 around a call and passes on only the lines that are not known noise, so a real
error from the library is still seen.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

NOISE = re.compile(
    r"^(INFO: |ALSA lib |Expression 'alsa_|Cannot connect to server socket|jack server is not running"
    r"|JackShmReadWritePtr|Cannot connect to server request channel|.*\bpaInvalidSampleRate\b)"
)


@contextlib.contextmanager
def filtered_stderr(noise: re.Pattern[str] = NOISE) -> Iterator[None]:
    """Run the body with fd 2 captured; afterwards re-emit every line that `noise` does not match."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines()
                    if line.strip() and not noise.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr, flush=True)
