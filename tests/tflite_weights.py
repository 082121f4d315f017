"""What an int8 .tflite file holds, read back through the real interpreter: for tests that check a
conversion against the Keras model it came from."""

from __future__ import annotations

import numpy as np


def stored_convolutions(tflite: bytes) -> list[np.ndarray]:
    """The convolution weights an int8 file holds, dequantised with their per-channel scales, as
    Keras Conv1D kernels (taps, inputs, outputs)."""
    from edge_ser.model.classifier import load_interpreter_class

    _, interpreter_class = load_interpreter_class("ai-edge-litert")
    interpreter = interpreter_class(model_content=tflite)
    interpreter.allocate_tensors()
    stored = []
    for tensor in interpreter.get_tensor_details():
        scales = tensor["quantization_parameters"]["scales"]
        if tensor["dtype"] == np.int8 and len(tensor["shape"]) == 4 and len(scales) > 1:
            weights = interpreter.get_tensor(tensor["index"]).astype(np.float32) * scales[:, None, None, None]
            stored.append(np.transpose(weights[:, 0], (1, 2, 0)))  # CONV_2D's (out, 1, taps, in)
    return stored
