"""Run the RTMP relay: publish once, play many, over IPv6/IPv4 and MPTCP.

Flags override the TOML file given with --config (see mpstream.streaming.relay.config for its keys).
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
    parser.add_argument("--flush-interval-ms", type=float,
                        help="send media on at most this often: one write per player per interval, a message "
                             "waits up to it (default: 50)")
    parser.add_argument("--max-player-lag-ms", type=float,
                        help="a player further behind skips to the next keyframe (default: 10000)")
    parser.add_argument("--disconnect-after-ms", type=float,
                        help="a player behind for this long is disconnected (default: 30000)")
    edge = parser.add_argument_group("edge mode", "pull streams nobody publishes here from origins, in order, "
                                                  "and go on with the next one when an origin fails")
    edge.add_argument("--origin", action="append", metavar="rtmp://HOST[:PORT]/APP",
                      help="an origin, repeatable; without APP the player's app (default: none, not an edge)")
    edge.add_argument("--pull-linger-s", type=float,
                      help="end a pull this long after its last player left (default: 10)")
    edge.add_argument("--origin-silence-s", type=float,
                      help="an origin that sends no media this long has failed (default: 0.8)")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from mpstream.streaming.relay import eventloop
    from mpstream.streaming.relay.config import ConfigError, load
    from mpstream.streaming.relay.server import Relay

    log = logging.getLogger("mpstream.relay")
    overrides = {
        "listen": args.listen, "http": args.http, "mptcp": args.mptcp, "chunk_size": args.chunk_size,
        "gop_cache": args.gop_cache, "on_busy": args.on_busy, "max_connections": args.max_connections,
        "flush_interval_ms": args.flush_interval_ms, "max_player_lag_ms": args.max_player_lag_ms,
        "disconnect_after_ms": args.disconnect_after_ms, "origins": args.origin,
        "pull_linger_s": args.pull_linger_s, "origin_silence_s": args.origin_silence_s,
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

    return eventloop.run(main())
