"""Daemon logging: one record per line, key=value (logfmt) or JSON, for journald and log shippers."""

from __future__ import annotations

import json
import logging
import sys
import time

from edge_ser.app.config import Config


class LineFormatter(logging.Formatter):
    """One log record per line, key=value (logfmt) or JSON: greppable in journald, parseable by tools."""

    def __init__(self, style: str) -> None:
        super().__init__()
        self.json = style == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
                  "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if self.json:
            return json.dumps(fields)
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())


def _logfmt_value(value: str) -> str:
    """Bare when unambiguous, else a JSON string (quotes and escapes, one line)."""
    plain = value and not any(c in value for c in ' ="\n')
    return value if plain else json.dumps(value)


def setup_logging(cfg: Config) -> None:
    handler = logging.StreamHandler(sys.stderr if cfg.output.stdout else sys.stdout)
    handler.setFormatter(LineFormatter(cfg.log.format))
    logging.basicConfig(level=cfg.log.level.upper(), handlers=[handler], force=True)
