"""Watch each provider path and re-create its MPTCP subflows when it comes back.

Probes every provider with ICMP echo from its local addresses to the peers' addresses over
the same provider (`--probe PROVIDER,SOURCE,TARGET[,PEER]`, or a JSON `--config`): a few
probes a round per provider, whatever the number of peers (`--probe-all`: every probe
every round). A provider is down after `--down-after` seconds of silence, longer where its
measured round-trip time asks for it (see tracker.Tracker). It listens to
link events of the providers' devices, and when a provider that was down answers again
removes and re-adds the MPTCP endpoints on its addresses (once it has stayed up for three
probe rounds, and only while another provider answers), so that the kernel opens (or
announces) that provider's subflows for every live connection. When a provider fails
while another answers, its MPTCP subflows are aborted (`--no-abort` leaves them to their
retransmission timers). Needs CAP_NET_RAW and CAP_NET_ADMIN in the node's network
namespace.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help="JSON: {interval, down_after, down_after_max, rtt_factor, probes_per_round, probe_all, "
        "recreate, abort, providers: [{name, devices, addresses, probes: [{source, target, peer}]}]}",
    )
    parser.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="PROVIDER,SOURCE,TARGET[,PEER]",
        help="probe PROVIDER by echo from SOURCE to TARGET, an address of PEER (repeatable)",
    )
    parser.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="PROVIDER,DEVICE",
        help="PROVIDER is down while DEVICE has no carrier (repeatable)",
    )
    parser.add_argument("--interval", type=float, help="seconds between probe rounds (default 0.2)")
    parser.add_argument(
        "--down-after",
        type=float,
        help="seconds without an answer before a provider counts as down, at least (default 0.6)",
    )
    parser.add_argument(
        "--rtt-factor",
        type=float,
        help="down after at least this many times srtt + 4 rttvar without an answer (default 2; 0: fixed)",
    )
    parser.add_argument(
        "--probes-per-round",
        type=int,
        help="probes a round per provider, whatever the number of peers (default 2)",
    )
    parser.add_argument(
        "--probe-all",
        action="store_true",
        help="send every probe every round (the cost grows with the number of peers)",
    )
    parser.add_argument("--no-recreate", action="store_true", help="only watch and log, change nothing")
    parser.add_argument(
        "--no-abort",
        action="store_true",
        help="leave a failed provider's MPTCP subflows to their retransmission timers",
    )
    parser.add_argument("--events", type=Path, help="append one JSON line per transition and action here")
    parser.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: run until SIGTERM)"
    )


def build_config(args: argparse.Namespace):
    from mpstream.paths.pathwatch import config as cfg

    data: dict = {"providers": []}
    if args.config:
        data = cfg.json.loads(args.config.read_text())
    by_name = {entry["name"]: entry for entry in data.setdefault("providers", [])}
    for text in args.probe:
        name, source, target, peer = cfg.parse_probe(text)
        by_name.setdefault(name, {"name": name})
        if by_name[name] not in data["providers"]:
            data["providers"].append(by_name[name])
        by_name[name].setdefault("probes", []).append({"source": source, "target": target, "peer": peer})
    for text in args.device:
        name, _, device = text.partition(",")
        if name not in by_name:
            raise cfg.ConfigError(f"--device {text}: no probes for provider {name}")
        by_name[name].setdefault("devices", []).append(device)
    if args.interval is not None:
        data["interval"] = args.interval
    if args.down_after is not None:
        data["down_after"] = args.down_after
    if args.rtt_factor is not None:
        data["rtt_factor"] = args.rtt_factor
    if args.probes_per_round is not None:
        data["probes_per_round"] = args.probes_per_round
    if args.probe_all:
        data["probe_all"] = True
    if args.no_recreate:
        data["recreate"] = False
    if args.no_abort:
        data["abort"] = False
    return cfg.from_dict(data)


def run(args: argparse.Namespace) -> int:
    from mpstream.paths.pathwatch.config import ConfigError
    from mpstream.paths.pathwatch.watcher import Watcher

    log = logging.getLogger("mpstream.pathwatch")
    for chatty in ("pyroute2", "pyroute2.netlink.core", "asyncio"):  # DEBUG lines would drown ours
        logging.getLogger(chatty).setLevel(max(logging.INFO, logging.getLogger().level))
    try:
        config = build_config(args)
    except (ConfigError, OSError, ValueError) as exc:
        log.error("%s", exc)
        return 2

    def stop(signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        watcher = Watcher(config, args.events)
    except PermissionError as exc:
        log.error("cannot open probe sockets (%s): run as root or with CAP_NET_RAW", exc)
        return 1
    except OSError as exc:
        log.error("cannot bind a probe to its source address (%s): is the address on this node?", exc)
        return 1
    # From here SIGTERM or SIGINT ends the round in progress, never a change to the endpoints
    # halfway (an endpoint deleted but not yet remembered would not be added back on exit).
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: watcher.request_stop())
    try:
        watcher.run(args.duration)
        log.info("stopping")
    finally:
        watcher.close()
    return 0
