"""The publisher's pacing, in-process over loopback: a tag may go out with one due just before
it, but never more than SEND_AHEAD_S before its own time (about 2 s)."""

from __future__ import annotations

import asyncio
import time

import pytest
from mpstream.streaming.clients.publisher import SEND_AHEAD_S, Publisher, PublishOptions
from mpstream.streaming.clients.synthetic import SyntheticOptions, SyntheticStream
from mpstream.streaming.relay.config import load
from mpstream.streaming.relay.server import Relay
from mpstream.streaming.rtmp import AUDIO, VIDEO, MediaMessage

from tests.support.rtmp_client import RtmpPeer

pytestmark = pytest.mark.timeout(60)


def test_no_tag_leaves_more_than_the_send_ahead_before_its_time():
    async def main():
        relay = Relay(load(None, {"listen": ["[::1]:0"], "http": "", "mptcp": "off"}))
        await relay.start()
        url = f"rtmp://[::1]:{relay.listening[0].rpartition(':')[2]}/live/cam"
        try:
            viewer = await RtmpPeer.open(url, "play")
            await asyncio.sleep(0.2)  # the viewer waits for the stream before it starts
            start = (time.time(), time.monotonic())
            source = SyntheticStream(SyntheticOptions(bitrate_bps=400_000, fps=30, audio_bps=64_000))
            push = Publisher(source, PublishOptions(url=url, mptcp="off", duration_s=1.5), clock_start=start)
            report = await push.run()
            await asyncio.sleep(0.2)
            media = [(at, e) for at, e in viewer.events
                     if isinstance(e, MediaMessage) and e.timestamp > 0 and e.type_id in (AUDIO, VIDEO)]
            # 1.5 s of 30 video and 43 audio frames a second, the headers at 0 left out
            assert report.tags_sent >= 100 and len(media) >= 100
            early = [(e.timestamp, round(start[1] + e.timestamp / 1000 - at, 4)) for at, e in media
                     if at < start[1] + e.timestamp / 1000 - SEND_AHEAD_S - 0.002]
            assert not early, f"(timestamp ms, seconds early) beyond {SEND_AHEAD_S} s: {early[:5]}"
            await viewer.close()
        finally:
            await relay.stop()
    asyncio.run(main())
