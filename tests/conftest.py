"""The suite's layers: fixture families as plugins, and the markers that sort tests by what they need.

Each fixture family is a plugin module, so a test module imports only the helpers it uses and pytest
alone decides which fixtures exist. `integration` is given by the fixtures a test asks for (directly
or through another fixture), so a new test on a broker or a daemon is sorted without anyone
remembering to mark it; `slow`, and `integration` for tests that start such things themselves, are
marked in the test modules. `pytest -m "not integration and not slow"` is the quick loop.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.audio_fixtures", "tests.daemon_process", "tests.mqtt_fixtures", "tests.pulse_fixtures"]

# Fixtures that start a mosquitto broker, a PulseAudio server or a daemon subprocess.
INTEGRATION_FIXTURES = frozenset({
    "mqtt_broker", "mqtt_persistent_broker", "mqtt_tls_broker", "mqtt_collector",
    "virtual_mic", "pulse_factory",
    "daemon_runner",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
