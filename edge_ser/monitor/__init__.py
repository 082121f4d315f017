"""The monitor: what people running kiosks and robots look at. A device-state model fed by MQTT
(plain Python, tested without a display), a Tk window and a terminal view over it, and timeline
plots of recordings. It subscribes and publishes like any other MQTT client."""
