"""Run the RTMP relay: publish once, play many, over IPv6/IPv4 and MPTCP.

Flags override the TOML file given with --config (see mpstream.relay.config for its keys).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", action="append", metavar="HOST:PORT",
                        help="RTMP listen address, repeatable (default: [::]:1935, dual-stack)")
    parser.add_argument("--http", metavar="HOST:PORT",
                        help="stats API address (default: localhost:8935; '' switches it off)")
    parser.add_argument("--config", metavar="FILE", help="TOML file with further settings")
    parser.add_argument("--mptcp", choices=["auto", "on", "off"], help="use MPTCP sockets (default: auto)")
    parser.add_argument("--chunk-size", type=int, help="outgoing chunk size (default: 4096)")
    parser.add_argument("--gop-cache", action=argparse.BooleanOptionalAction, default=None,
                        help="start late joiners at the latest keyframe (default: on)")
    parser.add_argument("--on-busy", choices=["refuse", "replace"],
                        help="a second publisher on a busy stream (default: refuse)")
    parser.add_argument("--max-connections", type=int, help="connection limit (default: 1000)")
    parser.add_argument("--flush-interval-ms", type=float, help="merge writes per player over this long (default: 50)")
    parser.add_argument("--max-player-lag-ms", type=float,
                        help="a player further behind skips to the next keyframe (default: 10000)")
    parser.add_argument("--disconnect-after-ms", type=float,
                        help="a player behind for this long is disconnected (default: 30000)")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from mpstream.relay.config import ConfigError, load
    from mpstream.relay.server import Relay

    log = logging.getLogger("mpstream.relay")
    overrides = {
        "listen": args.listen, "http": args.http, "mptcp": args.mptcp, "chunk_size": args.chunk_size,
        "gop_cache": args.gop_cache, "on_busy": args.on_busy, "max_connections": args.max_connections,
        "flush_interval_ms": args.flush_interval_ms, "max_player_lag_ms": args.max_player_lag_ms,
        "disconnect_after_ms": args.disconnect_after_ms,
    }
    try:
        config = load(args.config, overrides)
    except ConfigError as exc:
        log.error("configuration: %s", exc)
        return 2

    async def main() -> int:
        relay = Relay(config)
        try:
            await relay.start()
        except OSError as exc:
            log.error("cannot start: %s", exc)
            await relay.stop()
            return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda s=sig: (log.info("%s received", signal.Signals(s).name),
                                                        stop.set()))
        await stop.wait()
        await relay.stop()
        log.info("stopped")
        return 0

    return asyncio.run(main())
