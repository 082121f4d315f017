"""The wire contract: JSON payload builders (event, state, command result), command parsing, and
the JSON Schemas that document them. No network code."""
