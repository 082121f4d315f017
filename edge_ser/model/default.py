"""Where the bundled default model lives: a path only, so command-line parsers can name it without
loading NumPy or an interpreter."""

from pathlib import Path

DEFAULT_MODEL = Path(__file__).parent / "bundled" / "default.tflite"
