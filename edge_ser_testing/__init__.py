"""Development helpers shared by the tests and the benchmarks: generated test speech, generated
non-speech (tones, music, noise, knocks) and a real mosquitto broker on a loopback port.

They live in a package of their own, outside `tests/`, because the benchmarks need them too and
must not import the test suite; and outside `edge_ser` and `edge_ser_train`, because they are
neither device nor training code. Plain Python, no pytest: the test fixtures wrap them. The runtime
never imports this package (tests/test_layers.py checks it).
"""
