"""The model artefact: its manifest (labels, feature config, window, quantisation) and the int8
TFLite classifier that runs it."""
