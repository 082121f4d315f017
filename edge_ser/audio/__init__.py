"""Audio in: the sources a device listens to (microphone, WAV file, raw PCM on stdin), WAV reading and
writing, resampling and PCM helpers. Knows nothing of features, models or MQTT."""
