"""edge-ser: on-device speech emotion recognition (MFCC front end, int8 TFLite, MQTT events)."""

__version__ = "0.1.0"
