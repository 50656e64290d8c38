"""Publish a live stream to an RTMP server: an FLV file in real time, or a synthetic stream.

From a file (`--file`, optionally `--loop`) tags go out paced by their timestamps, like
`ffmpeg -re -c copy`. Without a file the stream is synthetic: valid H.264 + AAC whose
sizes follow `--bitrate`, `--fps` and `--gop` (keyframes several times an inter frame),
so the load on the network looks like video. The wall-clock start is announced in the
metadata (and in each keyframe) so that players can measure end-to-end latency. When
the connection breaks the publisher reconnects with exponential backoff and says so.
Several URLs publish the same source to each (redundant origins for edge relays): one
timeline, one connection per URL, each reconnecting on its own, so that a slow or dead
server never holds up the others.
Exit status: 0 when the run ended as asked, 1 when publishing failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", nargs="+", help="rtmp://HOST[:PORT]/APP/STREAM (IPv6 literals in brackets); "
                                                "several: the same stream to each")
    source = parser.add_argument_group("source")
    source.add_argument("--file", help="FLV file to publish (H.264/AAC as ffmpeg writes it)")
    source.add_argument("--loop", action="store_true", help="start the file again at its end (timestamps go on)")
    source.add_argument("--bitrate", default="2.5M",
                        help="synthetic stream: payload bit rate, video + audio (default: 2.5M)")
    source.add_argument("--fps", type=int, default=30, help="synthetic stream: frames per second (default: 30)")
    source.add_argument("--gop", default="2s", help="synthetic stream: keyframe interval (default: 2s)")
    source.add_argument("--size", default="1280x720", help="synthetic stream: picture size (default: 1280x720)")
    source.add_argument("--audio-bitrate", default="128k",
                        help="synthetic stream: AAC bit rate, 0 for no audio (default: 128k)")
    source.add_argument("--keyframe-ratio", type=float, default=8.0,
                        help="synthetic stream: keyframe size / mean inter frame size (default: 8)")
    run = parser.add_argument_group("run")
    run.add_argument("--duration", type=float, default=None,
                     help="stop after this many seconds (default: at the end of the file, never for "
                          "--loop or a synthetic stream)")
    run.add_argument("--mptcp", choices=["auto", "on", "off"], default="auto",
                     help="use MPTCP: auto (when the kernel offers it), on (required), off (default: auto)")
    run.add_argument("--no-reconnect", dest="reconnect", action="store_false",
                     help="give up when the connection breaks instead of reconnecting")
    run.add_argument("--backoff", type=float, default=0.5, help="first reconnect delay in seconds (default: 0.5)")
    run.add_argument("--backoff-max", type=float, default=10.0,
                     help="longest reconnect delay in seconds; delays double up to it (default: 10)")
    run.add_argument("--max-attempts", type=int, default=0,
                     help="give up after this many failed connection attempts in a row (default: 0, never)")
    run.add_argument("--json", help="write a report of the run (connections, outages, bytes) to this file")


def build_source(args: argparse.Namespace):
    """The source the options describe; raises ValueError with a message for the user."""
    if args.file:
        from mpstream.streaming.clients.sources import FileSource

        return FileSource(args.file, loop=args.loop)
    from mpstream.streaming.clients.synthetic import SyntheticOptions, SyntheticStream, parse_duration, parse_rate

    width, _, height = args.size.lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise ValueError(f"--size must be WIDTHxHEIGHT, not {args.size!r}")
    audio = parse_rate(args.audio_bitrate) if args.audio_bitrate not in ("0", "") else 0
    return SyntheticStream(SyntheticOptions(
        bitrate_bps=parse_rate(args.bitrate), fps=args.fps, gop_s=parse_duration(args.gop),
        width=int(width), height=int(height), audio_bps=audio, keyframe_ratio=args.keyframe_ratio))


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal
    import time
    from dataclasses import replace

    from mpstream.streaming.clients.publisher import Publisher, PublishError, PublishOptions

    log = logging.getLogger("mpstream.publish")
    try:
        source = build_source(args)
    except (OSError, ValueError) as exc:
        print(f"mpstream publish: {exc}", file=sys.stderr)
        return 2
    options = PublishOptions(
        url=args.url[0], mptcp=args.mptcp, duration_s=args.duration, reconnect=args.reconnect,
        backoff_initial_s=args.backoff, backoff_max_s=args.backoff_max, max_attempts=args.max_attempts,
        length_size=getattr(source, "length_size", 4))
    if len(set(args.url)) < len(args.url):
        print("mpstream publish: the same URL twice", file=sys.stderr)
        return 2
    try:
        if len(args.url) == 1:
            publishers = [Publisher(source, options)]
        else:
            shared = (time.time(), time.monotonic())  # one timeline for all: origins hold the same stream
            publishers = [Publisher(source, replace(options, url=url), clock_start=shared) for url in args.url]
    except ValueError as exc:
        print(f"mpstream publish: {exc}", file=sys.stderr)
        return 2

    async def publish(publisher: Publisher) -> bool:
        try:
            report = await publisher.run()
        except PublishError as exc:
            print(f"mpstream publish: {publisher.options.url}: {exc}" if len(publishers) > 1
                  else f"mpstream publish: {exc}", file=sys.stderr)
            return False
        log.info("publish: done%s: %d tags, %.1f MB, %d reconnects",
                 f" with {publisher.url.hostport}" if len(publishers) > 1 else "", report.tags_sent,
                 report.bytes_sent / 1e6, report.reconnects)
        return True

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: [p.stop() for p in publishers])
        try:
            # Each on its own: one failing (--no-reconnect, --max-attempts) leaves the others running.
            results = await asyncio.gather(*(publish(p) for p in publishers))
        finally:
            if args.json:
                with open(args.json, "w") as out:
                    json.dump(_report(args, publishers), out, indent=2)
        return 0 if all(results) else 1

    return asyncio.run(main())


def _report(args: argparse.Namespace, publishers: list) -> dict:
    """One URL: its report at the top level (as always); several: one report per URL under "urls"."""
    if len(publishers) == 1:
        return {"command": "publish", "options": _options(args), **publishers[0].report.as_dict()}
    reports = [p.report.as_dict() for p in publishers]
    return {"command": "publish", "options": _options(args), "start_ms": reports[0]["start_ms"], "urls": reports}


def _options(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if k not in ("run", "command") and not callable(v)}
