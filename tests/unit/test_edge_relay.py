"""Edge mode in the relay, in-process over loopback: one pull shared by viewers, the GOP cache, the
splice when an origin stops, the linger, and a local publisher taking the stream over (about 3 s)."""

from __future__ import annotations

import asyncio
import time

import pytest
from mpstream.streaming.relay.config import load
from mpstream.streaming.relay.server import Relay
from mpstream.streaming.rtmp import AUDIO, VIDEO, MediaMessage, PlayStarted, PublishStarted, Status

from tests.support.rtmp_client import RtmpPeer

pytestmark = pytest.mark.timeout(60)

VIDEO_HEADER = b"\x17\x00\x00\x00\x00\x01\x42\x00\x1e\xff"
AUDIO_HEADER = b"\xaf\x00\x12\x10"


def frame(ts: int, key: bool) -> bytes:
    return (b"\x17" if key else b"\x27") + b"\x01\x00\x00\x00" + ts.to_bytes(4, "big") + bytes(200)


async def relay(**settings) -> tuple[Relay, int]:
    settings = {"listen": ["[::1]:0"], "http": "", "mptcp": "off", **settings}
    server = Relay(load(None, settings))
    await server.start()
    return server, int(server.listening[0].rpartition(":")[2])


class Publisher:
    """One source to several origins, as `mpstream publish URL_A URL_B` does: the same tags everywhere."""

    def __init__(self, peers: list[RtmpPeer], sids: list[int]):
        self.peers, self.sids, self.ts = peers, sids, 0

    @classmethod
    async def to(cls, urls: list[str]) -> Publisher:
        peers = [await RtmpPeer.open(url, "publish") for url in urls]
        sids = [(await peer.wait_for(PublishStarted)).stream_id for peer in peers]
        for peer, sid in zip(peers, sids, strict=True):
            peer.session.send_media(VIDEO, sid, 0, VIDEO_HEADER)
            peer.session.send_media(AUDIO, sid, 0, AUDIO_HEADER)
        return cls(peers, sids)

    async def frames(self, count: int) -> None:
        """`count` frames of 40 ms, a keyframe every 10, sent ten times faster than real time."""
        for _ in range(count):
            for peer, sid in zip(self.peers, self.sids, strict=True):
                if not peer.closed.is_set():
                    peer.session.send_media(VIDEO, sid, self.ts, frame(self.ts, self.ts % 400 == 0))
                    peer.session.send_media(AUDIO, sid, self.ts, b"\xaf\x01" + bytes(50))
                    peer.flush()
            self.ts += 40
            await asyncio.sleep(0.004)

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()


def video(peer: RtmpPeer) -> list[MediaMessage]:
    return [e for e in peer.of(MediaMessage) if e.type_id == VIDEO and e.body != VIDEO_HEADER]


def test_edge_pulls_once_splices_when_its_origin_stops_and_lets_go_after_the_linger():
    async def main():
        origin_a, port_a = await relay()
        origin_b, port_b = await relay()
        edge, port_e = await relay(origins=[f"rtmp://[::1]:{port_a}/live", f"rtmp://[::1]:{port_b}/live"],
                                   pull_linger_s=0.3, origin_silence_s=0.5)
        source = await Publisher.to([f"rtmp://[::1]:{port_a}/live/cam", f"rtmp://[::1]:{port_b}/live/cam"])
        try:
            await source.frames(15)
            viewer = await RtmpPeer.open(f"rtmp://[::1]:{port_e}/live/cam", "play")
            await viewer.wait_for(PlayStarted)
            await source.frames(20)
            await viewer.wait_for(MediaMessage, count=20)
            # A second viewer shares the pull and starts at the cached keyframe.
            late = await RtmpPeer.open(f"rtmp://[::1]:{port_e}/live/cam", "play")
            first = await late.wait_for(MediaMessage, predicate=lambda e: e.type_id == VIDEO and e.body != VIDEO_HEADER)
            assert first.body[0] == 0x17
            assert len(edge.edge.pulls) == 1 and len(origin_a.streams[("live", "cam")].players) == 1

            await origin_a.stop()  # the pulled origin goes away: EOF to the edge
            await source.frames(30)
            last = source.ts - 40
            await viewer.wait_for(MediaMessage, predicate=lambda e: e.type_id == VIDEO and e.timestamp == last)
            pull = edge.snapshot()["streams"][0]["pull"]
            assert pull["switches"] == 1 and pull["delivering_origin"] == f"rtmp://[::1]:{port_b}/live/cam"
            assert pull["switch_log"][0]["mode"] == "aligned"
            stamps = [e.timestamp for e in video(viewer)]
            assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # nothing back, nothing twice
            assert len(stamps) == len(range(stamps[0], last + 1, 40))  # nothing missing
            assert not [s for s in viewer.of(Status) if "Unpublish" in s.code]  # the viewer saw no change

            await viewer.close()
            await late.close()
            for _ in range(40):  # linger 0.3 s, housekeeping every 0.25 s
                await asyncio.sleep(0.05)
                if not edge.streams:
                    break
            assert not edge.streams and not edge.edge.pulls
            await asyncio.sleep(0.1)
            assert not origin_b.streams[("live", "cam")].players  # the origin connection is closed
        finally:
            await source.close()
            for server in (edge, origin_b):
                await server.stop()
    asyncio.run(main())


def test_a_local_publisher_takes_over_and_the_pull_comes_back_after_it():
    async def main():
        origin, port_o = await relay()
        edge, port_e = await relay(origins=[f"rtmp://[::1]:{port_o}/live"], on_busy="replace")
        source = await Publisher.to([f"rtmp://[::1]:{port_o}/live/cam"])
        try:
            await source.frames(10)
            viewer = await RtmpPeer.open(f"rtmp://[::1]:{port_e}/live/cam", "play")
            await source.frames(10)
            await viewer.wait_for(MediaMessage, count=5)
            local = await Publisher.to([f"rtmp://[::1]:{port_e}/live/cam"])
            pull = edge.edge.pulls.get(("live", "cam"))
            assert pull is not None and edge.streams[("live", "cam")].publisher is not pull
            await local.frames(5)
            await local.close()
            for _ in range(20):  # the pull starts again at the next housekeeping round (every 0.25 s)
                await source.frames(5)
                if edge.edge.started == 2:
                    break
            assert len(edge.edge.pulls) == 1 and edge.edge.started == 2
            since = len(viewer.of(MediaMessage))
            await source.frames(10)
            await viewer.wait_for(MediaMessage, count=since + 5)  # media from the origin again
        finally:
            await source.close()
            for server in (edge, origin):
                await server.stop()
    asyncio.run(main())


def test_one_source_to_several_origins_where_a_mute_one_holds_up_nobody():
    """`mpstream publish URL_A URL_B`: one timeline; a server that never answers costs only its own connection."""
    from mpstream.streaming.clients.publisher import Publisher as Push
    from mpstream.streaming.clients.publisher import PublishOptions
    from mpstream.streaming.clients.synthetic import SyntheticOptions, SyntheticStream

    async def main():
        origin, port = await relay()
        mute = await asyncio.start_server(lambda r, w: None, "::1", 0)  # accepts, never says a word
        mute_port = mute.sockets[0].getsockname()[1]
        source = SyntheticStream(SyntheticOptions(bitrate_bps=300_000, fps=25, audio_bps=0))
        shared = (time.time(), time.monotonic())
        urls = [f"rtmp://[::1]:{port}/live/cam", f"rtmp://[::1]:{mute_port}/live/cam"]
        pushes = [Push(source, PublishOptions(url=url, mptcp="off", duration_s=1.2, connect_timeout_s=0.4,
                                              backoff_initial_s=0.1), clock_start=shared) for url in urls]
        try:
            viewer = await RtmpPeer.open(f"rtmp://[::1]:{port}/live/cam", "play")
            good, silent = await asyncio.gather(*(p.run() for p in pushes))
            assert good.tags_sent >= 25 and good.reconnects == 0 and not good.outages  # on time, all of it
            assert silent.tags_sent == 0 and silent.connections == 0 and silent.outages  # it kept trying
            assert good.start_ms == silent.start_ms  # one announced start: the same stream on both
            assert len([e for e in viewer.of(MediaMessage) if e.type_id == VIDEO]) >= 25
            await viewer.close()
        finally:
            mute.close()
            await origin.stop()
    asyncio.run(main())
