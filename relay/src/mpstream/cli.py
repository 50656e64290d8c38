"""The `mpstream` console command: one subcommand per job a node does.

Each subcommand lives in its own module that provides `add_arguments(parser)` and
`run(args) -> int`; its docstring's first line is the subcommand's help. Command modules
keep their top-level imports light and import the real work inside `run`, so that a node
which only records never loads the relay (or matplotlib).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mpstream import __version__

SUBCOMMANDS = {
    "relay": "mpstream.streaming.relay.command",
    "publish": "mpstream.streaming.clients.publish_command",
    "play": "mpstream.streaming.clients.play_command",
    "record": "mpstream.measurement.recorder.command",
    "report": "mpstream.measurement.report.command",
    "pathwatch": "mpstream.paths.pathwatch.command",
    "outage": "mpstream.paths.outage",
    "clock": "mpstream.measurement.clock",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mpstream", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mpstream {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold (default: INFO)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not module_name.startswith(exc.name or "\0"):
                raise
            continue  # not part of this build
        summary = (module.__doc__ or name).strip().splitlines()[0]
        command = sub.add_parser(name, help=summary, description=module.__doc__)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
