"""The front end: feature config, framing, MFCC and pitch columns, streaming and batch paths, and
per-window normalisation. NumPy/SciPy only; the same code serves the device and training."""
