"""`edge-ser` command line: one subcommand per module, imported only when used (fast start)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edge_ser import __version__
from edge_ser.errors import exit_status

# subcommand -> module with `add_arguments(parser)` and `main(args) -> int`
COMMANDS = {
    "predict": ("edge_ser.cli.predict", "classify audio files (WAV; FLAC/AIFF/OGG with soundfile) or folders"),
    "run": ("edge_ser.cli.run", "run the daemon: microphone, WAV file or stdin -> MQTT events"),
    "devices": ("edge_ser.cli.devices", "list audio input devices"),
    "monitor": ("edge_ser.cli.monitor", "watch live emotion events of devices: a window, or --tui in a terminal"),
    "unregister": ("edge_ser.cli.unregister", "remove a device's entities from Home Assistant (MQTT discovery)"),
}


LOG_LEVELS = ("debug", "info", "warning", "error")


def add_logging_options(parser: argparse.ArgumentParser, default: object) -> None:
    """-v and --log-level, on the command and on every subcommand: users put them on either side
    (`edge-ser predict -v x.wav` as often as `edge-ser -v predict x.wav`). The subcommands' copies
    default to SUPPRESS, so an option given before the subcommand is not reset by its absence after."""
    parser.add_argument("-v", "--verbose", action="count", default=default, help="more log output (-vv: debug)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=default,
                        help="log level (default warning; `run`: the profile's log.level)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-ser", description="On-device speech emotion recognition.")
    parser.add_argument("--version", action="version", version=f"edge-ser {__version__}")
    add_logging_options(parser, default=None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary)
        add_logging_options(p, default=argparse.SUPPRESS)
        importlib.import_module(module).add_arguments(p)
    return parser


def log_level(args: argparse.Namespace) -> int:
    """--log-level if given, else warning lowered a step per -v (down to debug)."""
    if args.log_level is not None:
        return int(getattr(logging, args.log_level.upper()))
    return logging.WARNING - 10 * min(args.verbose or 0, 2)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=log_level(args), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return exit_status("edge-ser", lambda: int(importlib.import_module(COMMANDS[args.command][0]).main(args)))


if __name__ == "__main__":
    sys.exit(main())
