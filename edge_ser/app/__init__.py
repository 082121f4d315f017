"""The application: the device config file, the daemon loop, logging, and building the source and
publisher a config asks for."""
