"""Build-time tooling for edge-ser: corpora, augmentation, training, int8 conversion and reports.

Imports TensorFlow lazily where it can; the runtime package `edge_ser` never imports this one.
"""
