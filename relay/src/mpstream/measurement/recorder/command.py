"""Record per-interface data rates as bwm-ng-compatible CSV (`bwm-ng -o csv -T rate`).

Reads the kernel's interface counters of the network namespace it runs in (netlink,
`/proc/net/dev` as fallback) every interval and writes one `;`-separated row per interface
plus a `total` row, each flushed as it is written. Stops on SIGTERM/SIGINT (after one last
sample), after `--count` samples or after `--duration` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interfaces", "-I", default="",
        help="comma-separated interfaces to record; prefix with %% to record all but these "
             "(bwm-ng's -I); default: all that are up",
    )
    parser.add_argument("--all", "-a", action="store_true",
                        help="also record interfaces that are down (listed ones are always recorded)")
    parser.add_argument("--interval-ms", "-t", type=int, default=500,
                        help="sampling interval in milliseconds (default: 500, like bwm-ng)")
    parser.add_argument("--output", "-F", default="-",
                        help="CSV file to append to, '-' for standard output (default)")
    parser.add_argument("--count", "-c", type=int, default=None,
                        help="stop after this many samples (the first, all zeros, included); "
                             "0: no limit, but leave out the first sample, like bwm-ng's -c 0")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument(
        "--source", choices=["auto", "netlink", "pyroute2", "proc"], default="auto",
        help="where counters come from: netlink (RTM_GETSTATS), pyroute2 (RTM_GETLINK via "
             "IPRoute.get_links) or /proc/net/dev; default auto: the first that works, in that order",
    )


def run(args: argparse.Namespace) -> int:
    from mpstream.measurement.recorder.rates import InterfaceSelection, RateTracker
    from mpstream.measurement.recorder.recorder import Limits, RowWriter, StopSignal, record
    from mpstream.measurement.recorder.sources import open_reader

    if args.interval_ms <= 0 or (args.count is not None and args.count < 0):
        print("mpstream record: --interval-ms must be positive and --count not negative", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        reader = open_reader(args.source)
        stack.callback(reader.close)
        stop = StopSignal().install()
        stack.callback(stop.close)
        if args.output == "-":
            sys.stdout.flush()
            out = RowWriter(sys.stdout.fileno())
        else:
            fd = os.open(args.output, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            stack.callback(os.close, fd)
            out = RowWriter(fd)
        # What start-up made lives as long as the process: out of the collector's sight, the
        # collections that the loop's few allocations still set off look at those alone.
        gc.collect()
        gc.freeze()
        try:
            record(
                reader, RateTracker(InterfaceSelection.parse(args.interfaces), include_down=args.all), out,
                interval_s=args.interval_ms / 1000.0,
                limits=Limits(count=args.count or None, duration_s=args.duration, write_first=args.count != 0),
                wait=stop.wait,
            )
        except BrokenPipeError:  # the reader of standard output went away (`| head`)
            return 0
    return 0
