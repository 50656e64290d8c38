"""The relay in-process over loopback, driven by RTMP peers built on the client state machine."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from mpstream.streaming.relay.config import load
from mpstream.streaming.relay.server import Relay
from mpstream.streaming.rtmp import (
    AUDIO,
    VIDEO,
    DataMessage,
    MediaMessage,
    PlayStarted,
    PublishStarted,
    Status,
    StreamBegin,
    StreamEOF,
    amf0,
)
from mpstream.streaming.rtmp.chunk import encode_message
from mpstream.streaming.rtmp.handshake import SIZE

from tests.support.rtmp_client import RtmpPeer

pytestmark = pytest.mark.timeout(60)

VIDEO_HEADER = b"\x17\x00\x00\x00\x00\x01\x42\x00\x1e\xff"
AUDIO_HEADER = b"\xaf\x00\x12\x10"


def keyframe(n: int, size: int = 2000) -> bytes:
    return b"\x17\x01\x00\x00\x00" + n.to_bytes(4, "big") + bytes(size)


def inter(n: int, size: int = 300) -> bytes:
    return b"\x27\x01\x00\x00\x00" + n.to_bytes(4, "big") + bytes(size)


def run(coro_fn, **settings):
    async def main():
        settings.setdefault("listen", ["[::1]:0"])
        settings.setdefault("http", "")
        settings.setdefault("mptcp", "off")
        relay = Relay(load(None, settings))
        await relay.start()
        try:
            port = int(relay.listening[0].rpartition(":")[2])
            return await coro_fn(relay, f"rtmp://[::1]:{port}/live")
        finally:
            await relay.stop()
    return asyncio.run(main())


async def publisher(base: str, name: str = "cam") -> tuple[RtmpPeer, int]:
    peer = await RtmpPeer.open(f"{base}/{name}", "publish")
    started = await peer.wait_for(PublishStarted)
    peer.session.send_metadata(started.stream_id, {"width": 640.0, "height": 360.0})
    peer.session.send_media(VIDEO, started.stream_id, 0, VIDEO_HEADER)
    peer.session.send_media(AUDIO, started.stream_id, 0, AUDIO_HEADER)
    await peer.drain()
    return peer, started.stream_id


async def send_gop(peer: RtmpPeer, sid: int, start_ms: int, frames: int = 10, first: int = 0) -> int:
    for i in range(frames):
        ts = start_ms + 40 * i
        peer.session.send_media(VIDEO, sid, ts, keyframe(first + i) if i == 0 else inter(first + i))
        peer.session.send_media(AUDIO, sid, ts, b"\xaf\x01" + bytes(100))
    await peer.drain()
    return start_ms + 40 * frames


def videos(peer: RtmpPeer) -> list[MediaMessage]:
    return [e for e in peer.of(MediaMessage) if e.type_id == VIDEO]


def test_publish_and_play_carry_metadata_headers_and_frames_in_order():
    async def scenario(relay, base):
        player = await RtmpPeer.open(f"{base}/cam", "play")
        await player.wait_for(PlayStarted)
        pub, sid = await publisher(base)
        await player.wait_for(StreamBegin, count=2)  # on play, and again when the publisher arrives
        await send_gop(pub, sid, 0, frames=25)
        await player.wait_for(MediaMessage, count=2 + 50, timeout=5)
        meta = player.of(DataMessage)
        assert [m.values[0] for m in meta][-1] == "onMetaData" and meta[-1].values[1]["width"] == 640
        got = videos(player)
        assert got[0].body == VIDEO_HEADER
        assert [v.body[5:9] for v in got[1:]] == [i.to_bytes(4, "big") for i in range(25)]
        assert [v.timestamp for v in got[1:]] == [40 * i for i in range(25)]
        codes = [s.code for s in player.of(Status)]
        assert "NetStream.Play.Start" in codes and "NetStream.Play.PublishNotify" in codes
        snap = relay.snapshot()
        [stream] = snap["streams"]
        assert stream["name"] == "live/cam" and stream["players"] == 1 and stream["video_frames"] == 25
        assert {c["role"] for c in snap["clients"]} == {"publisher", "player"}
        await pub.close()
        await player.close()
    run(scenario)


@pytest.mark.parametrize("gop_cache", [True, False])
def test_late_joiner_starts_with_a_keyframe(gop_cache):
    async def scenario(relay, base):
        pub, sid = await publisher(base)
        ts = await send_gop(pub, sid, 0, frames=10)
        ts = await send_gop(pub, sid, ts, frames=5, first=10)  # the cache now starts at frame 10
        await asyncio.sleep(0.1)
        asked = time.monotonic()
        player = await RtmpPeer.open(f"{base}/cam", "play")
        if gop_cache:
            await player.wait_for(MediaMessage, predicate=lambda e: e.type_id == VIDEO and e.body[1] == 1)
        else:
            await asyncio.sleep(0.3)
            assert not [v for v in videos(player) if v.body[1] == 1]  # nothing until the next keyframe
            await send_gop(pub, sid, ts, frames=3, first=15)
            await player.wait_for(MediaMessage, predicate=lambda e: e.type_id == VIDEO and e.body[1] == 1)
        arrival = next(t for t, e in player.events if isinstance(e, MediaMessage) and e.type_id == VIDEO
                       and e.body[1] == 1)
        frames = [v for v in videos(player) if v.body[1] == 1]
        assert frames[0].body[0] >> 4 == 1  # a keyframe first
        assert int.from_bytes(frames[0].body[5:9], "big") == (10 if gop_cache else 15)
        assert videos(player)[0].body == VIDEO_HEADER  # decoder configuration before any frame
        if gop_cache:
            assert arrival - asked < 0.2 + 0.1  # the connect/play round trips are inside this too
            await player.wait_for(MediaMessage, count=5, predicate=lambda e: e.type_id == VIDEO and e.body[1] == 1)
        await pub.close()
        await player.close()
    run(scenario, gop_cache=gop_cache)


def test_publisher_leaves_and_returns_under_the_same_name():
    async def scenario(relay, base):
        pub, sid = await publisher(base)
        await send_gop(pub, sid, 0, frames=5)
        player = await RtmpPeer.open(f"{base}/cam", "play")
        await player.wait_for(MediaMessage, count=5)
        pub.session.unpublish(sid, "cam")
        await pub.drain()
        await player.wait_for(StreamEOF)
        await player.wait_for(Status, predicate=lambda s: s.code == "NetStream.Play.UnpublishNotify")
        await pub.close()
        before = len(videos(player))
        pub2, sid2 = await publisher(base)
        await player.wait_for(Status, predicate=lambda s: s.code == "NetStream.Play.PublishNotify")
        await send_gop(pub2, sid2, 0, frames=5, first=100)
        await player.wait_for(MediaMessage, predicate=lambda e: e.type_id == VIDEO and e.body[5:9] == (104).to_bytes(
            4, "big"))
        after = videos(player)[before:]
        frames = [v for v in after if v.body[1] == 1]
        assert frames[0].body[0] >> 4 == 1
        stamps = [v.timestamp for v in videos(player)]
        assert stamps == sorted(stamps)  # the returning publisher's clock restarts; players' does not
        await pub2.close()
        await player.close()
    run(scenario)


@pytest.mark.parametrize("on_busy", ["refuse", "replace", "stale without key", "stale with key"])
def test_second_publisher(on_busy):
    """A live publisher keeps its name, silent or not, unless on_busy = replace or the key proves ownership."""
    name = "cam?key=k" if on_busy == "stale with key" else "cam"

    async def scenario(relay, base):
        first, sid = await publisher(base, name)
        if on_busy.startswith("stale"):
            await asyncio.sleep(0.4)  # the first publisher goes silent (a stall, or a half-open connection)
        second = await RtmpPeer.open(f"{base}/{name}", "publish")
        if on_busy in ("refuse", "stale without key"):
            status = await second.wait_for(Status, predicate=lambda s: s.level == "error")
            assert "already" in status.description
            await second.closed.wait()
            assert relay.streams[("live", "cam")].publisher is not None
            assert not first.closed.is_set()
        else:
            await second.wait_for(PublishStarted)
            await asyncio.wait_for(first.closed.wait(), 5)
        await first.close()
        await second.close()
    if on_busy == "stale without key":
        run(scenario, stale_publisher_s=0.3)
    elif on_busy == "stale with key":
        run(scenario, stale_publisher_s=0.3, apps={"live": {"publish_key": "k"}})
    else:
        run(scenario, on_busy=on_busy)


def test_publish_key_and_play_deny_list(tmp_path):
    path = tmp_path / "relay.toml"
    path.write_text('listen = ["[::1]:0"]\nhttp = ""\nmptcp = "off"\n[apps.live]\npublish_key = "s3"\n'
                    'play_deny = ["::1/128"]\n')

    async def main():
        relay = Relay(load(path))
        await relay.start()
        try:
            base = f"rtmp://{relay.listening[0]}/live"
            wrong = await RtmpPeer.open(f"{base}/cam?key=nope", "publish")
            status = await wrong.wait_for(Status)
            assert status.code == "NetStream.Publish.Unauthorized"
            right = await RtmpPeer.open(f"{base}/cam?key=s3", "publish")
            await right.wait_for(PublishStarted)
            assert relay.streams[("live", "cam")].publisher is not None
            player = await RtmpPeer.open(f"{base}/cam", "play")
            status = await player.wait_for(Status)
            assert status.level == "error" and not player.of(PlayStarted)
            other = await RtmpPeer.open(f"rtmp://{relay.listening[0]}/vod/x", "play")
            await other.closed.wait()
            assert relay.counters["refused_connects"] == 1
            for peer in (wrong, right, player, other):
                await peer.close()
        finally:
            await relay.stop()
    asyncio.run(main())


def test_slow_player_skips_then_is_dropped_while_others_keep_up():
    async def scenario(relay, base):
        pub, sid = await publisher(base)
        good = await RtmpPeer.open(f"{base}/cam", "play")
        await good.wait_for(PlayStarted)
        slow = await RtmpPeer.open(f"{base}/cam", "play")
        await slow.wait_for(PlayStarted)
        slow.writer.transport.pause_reading()  # it stops reading: its window fills up
        sock = slow.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ts = 0
        sent = 0
        for _ in range(40):  # 2 s at ~40 Mbit/s: more than loopback socket buffers hold
            for i in range(5):
                pub.session.send_media(VIDEO, sid, ts, keyframe(sent, 200000) if i == 0 else inter(sent, 10000))
                ts += 10
                sent += 1
            await pub.drain()
            await asyncio.sleep(0.05)
        await good.wait_for(MediaMessage, count=sent + 2, timeout=10)
        assert [int.from_bytes(v.body[5:9], "big") for v in videos(good)[1:]] == list(range(sent))
        [info] = [c for c in relay.snapshot()["clients"] if c["id"] != 0 and c["skips"] > 0] or [None]
        assert info is not None or relay.counters["slow_players_dropped"] == 1
        await asyncio.sleep(1.5)
        assert relay.counters["slow_players_dropped"] == 1
        assert len(relay.streams[("live", "cam")].players) == 1
        for peer in (pub, good, slow):
            await peer.close()
    run(scenario, max_player_lag_ms=300, disconnect_after_ms=1000)


async def _raw(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host_port = base.split("//")[1].split("/")[0]
    host, port = host_port.rsplit(":", 1)
    return await asyncio.open_connection(host.strip("[]"), int(port))


async def _handshaken(base: str):
    reader, writer = await _raw(base)
    writer.write(bytes([3]) + bytes(SIZE))
    await reader.readexactly(1 + 2 * SIZE)
    writer.write(bytes(SIZE))
    return reader, writer


HOSTILE = {
    "garbage handshake": lambda: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "chunk size 0": lambda: encode_message(2, 1, 0, 0, (0).to_bytes(4, "big"), 128),
    "chunk size 2^31": lambda: encode_message(2, 1, 0, 0, (1 << 31).to_bytes(4, "big"), 128),
    "chunk size 1": lambda: encode_message(2, 1, 0, 0, (1).to_bytes(4, "big"), 128) + bytes(10000),
    "message over the limit": lambda: bytes([0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]),
    "thousands of chunk streams": lambda: b"".join(encode_message(c, 9, 1, 0, b"", 128) for c in range(3, 3000)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_peer_is_dropped_and_the_stream_goes_on(case):
    async def scenario(relay, base):
        pub, sid = await publisher(base)
        player = await RtmpPeer.open(f"{base}/cam", "play")
        await player.wait_for(PlayStarted)
        if case == "garbage handshake":
            reader, writer = await _raw(base)
        else:
            reader, writer = await _handshaken(base)
        writer.write(HOSTILE[case]())
        ts = await send_gop(pub, sid, 0, frames=5)
        try:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # EOF: the relay closed it
        except ConnectionResetError:
            pass  # or reset it
        assert {c.role for c in relay.connections} == {"publisher", "player"}
        await send_gop(pub, sid, ts, frames=5, first=5)
        await player.wait_for(MediaMessage, count=2 + 20)
        writer.close()
        await pub.close()
        await player.close()
    run(scenario)


def test_slowloris_handshake_and_idle_connections_time_out():
    async def scenario(relay, base):
        silent_reader, silent_writer = await _raw(base)  # waits without a session until it speaks
        reader, writer = await _raw(base)
        writer.write(b"\x03" + bytes(100))  # then nothing more
        started = time.monotonic()
        await asyncio.sleep(0.1)
        assert relay.snapshot()["server"]["silent_sockets"] == 1 and len(relay.connections) == 1
        await asyncio.wait_for(reader.read(), 5)
        assert await asyncio.wait_for(silent_reader.read(), 5) == b""
        assert 0.4 < time.monotonic() - started < 2.5
        assert relay.counters["handshake_timeouts"] == 2
        assert relay.snapshot()["server"]["silent_sockets"] == 0
        writer.close()
        silent_writer.close()
    run(scenario, handshake_timeout_s=0.5)


def test_connection_limit():
    async def scenario(relay, base):
        keep = [await RtmpPeer.open(f"{base}/cam{i}", "play") for i in range(2)]
        for peer in keep:
            await peer.wait_for(PlayStarted)
        reader, writer = await _raw(base)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert relay.counters["refused_connections"] == 1
        writer.close()
        for peer in keep:
            await peer.close()
    run(scenario, max_connections=2)


def test_at_the_connection_limit_an_unfinished_handshake_makes_room_for_a_viewer():
    async def scenario(relay, base):
        idle = [await _raw(base) for _ in range(3)]  # a storm of sockets that never speak
        await asyncio.sleep(0.1)
        viewer = await RtmpPeer.open(f"{base}/cam", "play")
        await viewer.wait_for(PlayStarted)
        assert await asyncio.wait_for(idle[0][0].read(), 5) == b""  # the oldest made room
        assert relay.counters["evicted_connections"] == 1 and relay.counters["refused_connections"] == 0
        for _, writer in idle:
            writer.close()
        await viewer.close()
    run(scenario, max_connections=3)


def test_stats_api_json_and_metrics():
    async def scenario(relay, base):
        pub, sid = await publisher(base)
        await send_gop(pub, sid, 0, frames=5)
        player = await RtmpPeer.open(f"{base}/cam", "play")
        await player.wait_for(MediaMessage, count=3)
        address = relay.http.addresses[0]
        host, port = address.rsplit(":", 1)

        async def get(path):
            reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = await reader.read()
            writer.close()
            head, _, body = data.partition(b"\r\n\r\n")
            return head.split(b"\r\n")[0], body

        status, body = await get("/")
        assert status.endswith(b"200 OK")
        snap = json.loads(body)
        assert snap["streams"][0]["name"] == "live/cam" and snap["streams"][0]["players"] == 1
        clients = {c["role"]: c for c in snap["clients"]}
        assert clients["player"]["bytes_out"] > 2000 and clients["player"]["peer"].startswith("[::1]:")
        assert clients["publisher"]["mptcp"] is False and clients["publisher"]["subflows"] == 1
        status, body = await get("/metrics")
        text = body.decode()
        assert 'mpstream_relay_stream_players{stream="live/cam"} 1' in text
        assert "# TYPE mpstream_relay_mptcp_subflows gauge" in text
        sent = next(line for line in text.splitlines() if line.startswith("mpstream_relay_sent_bytes_total "))
        assert int(sent.split()[1]) >= clients["player"]["bytes_out"] > 2000
        # No label per client (peer, id): the series would grow with every viewer that ever came.
        assert "peer=" not in text and "id=" not in text
        assert (await get("/nope"))[0].endswith(b"404 Not Found")
        await pub.close()
        await player.close()
    run(scenario, http="[::1]:0")


def test_audio_only_stream_reaches_late_joiners():
    async def scenario(relay, base):
        pub = await RtmpPeer.open(f"{base}/radio", "publish")
        sid = (await pub.wait_for(PublishStarted)).stream_id
        pub.session.send_media(AUDIO, sid, 0, AUDIO_HEADER)
        for i in range(5):
            pub.session.send_media(AUDIO, sid, 23 * i, b"\xaf\x01" + bytes(50))
        await pub.drain()
        await asyncio.sleep(0.1)
        player = await RtmpPeer.open(f"{base}/radio", "play")
        await player.wait_for(PlayStarted)
        for i in range(5, 10):
            pub.session.send_media(AUDIO, sid, 23 * i, b"\xaf\x01" + bytes(50))
        await pub.drain()
        await player.wait_for(MediaMessage, count=6)  # the header, then the live frames
        assert player.of(MediaMessage)[0].body == AUDIO_HEADER
        await pub.close()
        await player.close()
    run(scenario)


def test_over_the_total_budget_the_greediest_connection_is_dropped():
    async def scenario(relay, base):
        small, small_sid = await publisher(base, "small")
        big, big_sid = await publisher(base, "big")
        small.session.send_media(VIDEO, small_sid, 0, keyframe(0, 100_000))
        big.session.send_media(VIDEO, big_sid, 0, keyframe(0, 100_000))
        for i in range(1, 9):
            big.session.send_media(VIDEO, big_sid, 40 * i, inter(i, 100_000))
        await small.drain()
        await big.drain()
        await asyncio.wait_for(big.closed.wait(), 5)
        assert relay.counters["over_budget_dropped"] == 1
        assert not small.closed.is_set() and relay.streams[("live", "small")].publisher is not None
        await small.close()
        await big.close()
    run(scenario, max_gop_bytes=2_000_000, max_output_bytes=3_000_000, max_connection_bytes=1_000_000,
        max_total_bytes=1_000_000)


def test_a_peer_over_its_message_budget_is_slowed_then_dropped_while_a_player_keeps_up():
    async def scenario(relay, base):
        pub, sid = await publisher(base)
        player = await RtmpPeer.open(f"{base}/cam", "play")
        await player.wait_for(PlayStarted)
        reader, writer = await _handshaken(base)
        writer.write(encode_message(3, 20, 0, 0, amf0.encode("connect", 1.0, {"app": "live"}), 128))
        flood = bytes([0x06, 0, 0, 0, 0, 0, 0, VIDEO, 1, 0, 0, 0]) + bytes([0xC6]) * 200_000
        writer.write(flood)
        ts = 0
        for _ in range(6):
            ts = await send_gop(pub, sid, ts, frames=5)
            await asyncio.sleep(0.2)
        await player.wait_for(MediaMessage, count=2 + 60, timeout=5)
        assert relay.counters["throttled_connections"] >= 1
        try:
            assert await asyncio.wait_for(reader.read(), 5) == b""
        except ConnectionResetError:
            pass
        assert relay.counters["over_budget_dropped"] == 1
        writer.close()
        await pub.close()
        await player.close()
    run(scenario, max_messages_per_s=1000, message_burst=1000, max_throttled_s=0.5)


def test_a_player_that_stops_acknowledging_is_dropped_and_one_that_stalls_for_less_is_not(caplog):
    """RTMP Acknowledgements tell a player that does not read long before its socket buffers are full."""

    async def scenario(relay, base):
        pub, sid = await publisher(base)
        gone = await RtmpPeer.open(f"{base}/cam", "play")
        stall = await RtmpPeer.open(f"{base}/cam", "play")
        for peer in (gone, stall):
            await peer.wait_for(PlayStarted)
            peer.writer.transport.pause_reading()
        start = time.monotonic()
        lags: dict[str, int] = {}
        n = 0
        while time.monotonic() - start < 3.0:  # 200 kB/s: the 64 KiB limit is passed within 0.4 s
            pub.session.send_media(VIDEO, sid, 50 * n, keyframe(n, 10_000))
            await pub.drain()
            n += 1
            await asyncio.sleep(0.05)
            elapsed = time.monotonic() - start
            if stall.writer.transport.is_reading() is False and elapsed > 1.0:
                stall.writer.transport.resume_reading()  # stalled ~0.6 s past the limit: under the 1.5 s
            if not lags and elapsed > 1.2:
                lags = {c["id"]: c["unacknowledged_bytes"] for c in relay.snapshot()["clients"]
                        if c["role"] == "player"}
        assert relay.counters["slow_players_dropped"] == 1
        gone.writer.transport.resume_reading()  # reset, not closed behind data a closed window keeps in
        await asyncio.wait_for(gone.closed.wait(), 2)
        assert isinstance(gone.error, ConnectionResetError)
        assert "not acknowledged" in caplog.text
        assert max(lags.values()) > 4 * 16 * 1024 and min(lags.values()) <= 4 * 16 * 1024
        await stall.wait_for(MediaMessage, timeout=2, predicate=lambda e: e.body[5:9] == (n - 1).to_bytes(4, "big"))
        assert not stall.closed.is_set() and len(relay.streams[("live", "cam")].players) == 1
        for peer in (pub, gone, stall):
            await peer.close()
    # 16 KiB windows, 4 of them: a player over 64 KiB behind does not read.
    run(scenario, disconnect_after_ms=1500, ack_window_bytes=16 * 1024, max_unacknowledged_windows=4)

