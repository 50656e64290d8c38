"""Play an RTMP stream like a viewer and measure what the viewer sees.

Records every audio/video message (arrival time, timestamp, size, keyframe; `--csv`)
and replays it through a player model with a `--buffer-ms` playback buffer: startup
delay, stalls (count, total, longest, when), late and skipped frames, end-to-end latency
percentiles (from the publisher's announced start; clocks must agree) and received bit
rate. The summary is printed and written as one JSON document (`--json`). No display and
no decoder are needed. With `--reconnect` a broken connection is made again (the
outage shows as a stall). Exit status: 0 when the stream played for the whole duration,
3 when it played but the connection ended early, 1 when nothing played (refused, no
server, no stream), 130 on Ctrl-C or SIGTERM (the summary is written in every case).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="rtmp://HOST[:PORT]/APP/STREAM (IPv6 literals in brackets)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--duration", type=float, default=100.0, help="seconds to play (default: 100)")
    length.add_argument("--until", type=float, metavar="UNIX_TIME",
                        help="play until this wall-clock time instead (a scenario's end, however late "
                             "the player was started)")
    parser.add_argument("--start-at", type=float, metavar="UNIX_TIME",
                        help="wait until this wall-clock time before connecting (a scenario's players "
                             "started together with its publisher, joining once the stream is there)")
    parser.add_argument("--buffer-ms", type=int, default=1000,
                        help="playback buffer of the player model, in ms (default: 1000)")
    parser.add_argument("--json", help="write the summary to this file")
    parser.add_argument("--csv", help="write one row per received audio/video message to this file")
    parser.add_argument("--mptcp", choices=["auto", "on", "off"], default="auto",
                        help="use MPTCP: auto (when the kernel offers it), on (required), off (default: auto)")
    parser.add_argument("--connect-timeout", type=float, default=10.0,
                        help="seconds to wait for the connection (default: 10)")
    parser.add_argument("--reconnect", action="store_true",
                        help="when the connection breaks (or the server is not there yet), connect again "
                             "with backoff until the duration ends; the time without media counts as a stall")
    parser.add_argument("--progress", type=float, default=10.0,
                        help="print a progress line every this many seconds, 0 for none (default: 10)")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from mpstream.streaming.clients.player import Player, PlayError, PlayOptions
    from mpstream.streaming.clients.summary import describe, progress_line, summarize, write_csv

    if args.start_at is not None and args.start_at > time.time():
        time.sleep(args.start_at - time.time())
    if args.until is not None:
        args.duration = args.until - time.time()
        if args.duration <= 0:
            print(f"mpstream play: --until {args.until:.3f} has passed already", file=sys.stderr)
            return 2
    if args.duration <= 0 or args.buffer_ms < 0:
        print("mpstream play: --duration must be positive and --buffer-ms not negative", file=sys.stderr)
        return 2
    options = PlayOptions(url=args.url, duration_s=args.duration, buffer_ms=args.buffer_ms, mptcp=args.mptcp,
                          connect_timeout_s=args.connect_timeout, progress_s=args.progress or float("inf"),
                          reconnect=args.reconnect)

    def progress(recording, now_s: float) -> None:
        print(progress_line(recording, now_s, args.buffer_ms), file=sys.stderr, flush=True)

    try:
        player = Player(options, progress if args.progress else None)
    except ValueError as exc:
        print(f"mpstream play: {exc}", file=sys.stderr)
        return 2

    async def main() -> str | None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, player.stop)
        try:
            await player.run()
        except PlayError as exc:
            return str(exc)
        except Exception as exc:  # keep what was recorded: the summary is still written below
            logging.getLogger("mpstream.play").exception("play: failed")
            player.recording.error = player.recording.error or f"internal error: {exc}"
            player.recording.end_reason = player.recording.end_reason or "internal error"
            return player.recording.error
        return None

    error = asyncio.run(main())
    recording = player.recording
    summary = summarize(recording, {"buffer_ms": args.buffer_ms, "duration_s": args.duration,
                                    "mptcp": args.mptcp, "reconnect": args.reconnect})
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=2)
    if args.csv:
        write_csv(recording, args.csv)
    if error and not summary["ran"]:
        print(f"mpstream play: {error}", file=sys.stderr)
        return 1
    for line in describe(summary):
        print(line)
    if not summary["ran"]:
        reason = recording.error or f"no media from {args.url} within {args.duration:g} s"
        print(f"mpstream play: {reason}", file=sys.stderr)
        return 1
    if recording.end_reason == "interrupted":
        return 130
    if not recording.complete:
        print(f"mpstream play: {recording.error or recording.end_reason}", file=sys.stderr)
        return 3
    return 0
