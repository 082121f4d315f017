"""MQTT: connection settings, the publisher (status, state, events, commands), the durable event
spool and Home Assistant discovery."""
