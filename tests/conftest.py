"""Fixtures shared across the suite, each family in its own module."""

from tests.audio_fixtures import *  # noqa: F403
from tests.daemon_process import *  # noqa: F403
from tests.mqtt_fixtures import *  # noqa: F403
from tests.pulse_fixtures import *  # noqa: F403
