"""A pull across fake origins, in memory (socket pairs, no network): hostile origins are left for the next.

Each fake origin speaks RTMP through a `ServerSession` and then misbehaves as told. The
pull feeds a recording stand-in for the relay's Stream. Timers are short (0.3 s silence),
so the whole file runs in about 3 s.
"""

import asyncio
import socket

import pytest
from mpstream.streaming.edge.pull import OriginPull
from mpstream.streaming.relay.config import RelayConfig
from mpstream.streaming.rtmp import ConnectRequest, PlayRequest, ServerSession, amf0
from mpstream.streaming.rtmp.messages import AUDIO, DATA_AMF0, VIDEO

AVC_HEADER = bytes([0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1E])
AAC_HEADER = bytes([0xAF, 0, 0x12, 0x10])
GOP = 10

pytestmark = pytest.mark.timeout(30)


def frame(ts: int, key: bool) -> bytes:
    return bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + ts.to_bytes(4, "big")


class RecordingStream:
    """What the pull feeds: the relay's Stream as far as a publisher sees it."""

    def __init__(self):
        self.app, self.name, self.key = "live", "cam", "live/cam"
        self.publisher = None
        self.media: list[tuple[int, int, bytes]] = []
        self.data: list[list] = []

    def on_media(self, type_id, ts, body):
        self.media.append((type_id, ts, body))

    def on_data(self, values, body, ts):
        self.data.append(values)


async def fake_origin(reader, writer, behaviour: str, frames: int, start_ts: int):
    """An origin that plays `frames` frames from `start_ts` (GOP cache first: starts at a keyframe),
    then does `behaviour`: close, garbage, stall (half a message), huge (a message over the limit),
    silent. Before playing: refuse (error status), garbage-first (no handshake), hang (never answers)."""
    if behaviour == "garbage-first":
        writer.write(b"\x07" + bytes(range(256)) * 20)
        await writer.drain()
        await asyncio.sleep(5)
        return
    if behaviour == "hang":
        await asyncio.sleep(5)
        return
    session = ServerSession()
    while True:
        data = await reader.read(65536)
        if not data:
            return
        for event in session.receive_data(data):
            if isinstance(event, ConnectRequest):
                session.accept_connect(event)
            elif isinstance(event, PlayRequest):
                if behaviour == "refuse":
                    session.reject_play(event, "no such stream")
                    writer.write(session.data_to_send())
                    await asyncio.sleep(5)
                    return
                session.accept_play(event)
                await _play(session, writer, event.stream_id, frames, start_ts)
                await _misbehave(session, writer, behaviour)
                return
        writer.write(session.data_to_send())


async def _play(session, writer, sid, frames, start_ts):
    session.send_data(sid, start_ts, "onMetaData", amf0.ECMAArray({"width": 640.0}))
    session.send_media(VIDEO, sid, start_ts, AVC_HEADER)
    session.send_media(AUDIO, sid, start_ts, AAC_HEADER)
    for i in range(frames):
        ts = start_ts + 40 * i
        session.send_media(VIDEO, sid, ts, frame(ts, i % GOP == 0))
        session.send_media(AUDIO, sid, ts + 5, bytes([0xAF, 1, i & 0xFF]))
        writer.write(session.data_to_send())
        await asyncio.sleep(0.004)  # ten times real time
    await writer.drain()


async def _misbehave(session, writer, behaviour):
    if behaviour == "close":
        writer.close()
        return
    if behaviour == "garbage":
        writer.write(bytes(range(3, 256)) * 40)
    elif behaviour == "stall":  # a video message of 100000 bytes, of which 1000 come
        writer.write(bytes([0x06, 0, 0, 0]) + (100000).to_bytes(3, "big") + bytes([VIDEO, 1, 0, 0, 0]) + b"\x27" * 128)
    elif behaviour == "huge":  # a message over max_message_size (8 MiB)
        writer.write(bytes([0x06, 0, 0, 0]) + (0xFFFFF0).to_bytes(3, "big") + bytes([VIDEO, 1, 0, 0, 0]) + b"\x27" * 64)
    await writer.drain()
    await asyncio.sleep(5)  # silent (and for the others: open, saying nothing more)


def pulling(behaviours: list[tuple[str, int, int]], **settings):
    """A pull over origins that behave as listed (behaviour, frames, first timestamp)."""
    origins = tuple(f"rtmp://origin{i}/live" for i in range(len(behaviours)))
    config = RelayConfig(origins=origins, origin_silence_s=0.3, origin_connect_timeout_s=0.5,
                         origin_retry_s=0.1, **settings)
    stream = RecordingStream()
    tasks: list[asyncio.Task] = []
    attempts: list[int] = []

    async def open_origin(url: str, timeout: float):
        index = int(url.split("/")[2].removeprefix("origin").split(":")[0])
        attempts.append(index)
        behaviour, frames, start = behaviours[index]
        if behaviour == "unreachable":
            raise ConnectionRefusedError(111, "Connection refused")
        ours, theirs = socket.socketpair()
        origin_reader, origin_writer = await asyncio.open_connection(sock=theirs)
        tasks.append(asyncio.create_task(fake_origin(origin_reader, origin_writer, behaviour, frames, start)))
        return await asyncio.open_connection(sock=ours)

    pull = OriginPull(config, stream, origins, open_origin=open_origin)
    stream.publisher = pull
    return pull, stream, tasks, attempts


async def run_pull(pull, tasks, seconds, until=lambda: False):
    """Pull for `seconds`, or until `until()` holds."""
    pull.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and not until():
        await asyncio.sleep(0.02)
    pull.cancel()
    await pull.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_hostile_origins_are_left_for_the_next_and_players_get_one_clean_timeline():
    pull, stream, tasks, attempts = pulling([
        ("close", 25, 1000),       # works, then goes away: the splice
        ("unreachable", 0, 0),
        ("garbage-first", 0, 0),   # not RTMP at all
        ("refuse", 0, 0),
        ("hang", 0, 0),            # accepts the connection, never answers
        ("garbage", 12, 7000),     # plays a GOP, then garbage
        ("stall", 12, 9000),       # plays, then stops in the middle of a message
        ("huge", 12, 300),         # plays, then a message over the limit
        ("silent", 60, 50000),     # plays on (and then says nothing)
    ])
    last = "rtmp://origin8:1935/live/cam"
    asyncio.run(run_pull(pull, tasks, 4, until=lambda: pull.delivering == last and len(stream.media) > 150))
    assert attempts[:9] == list(range(9))
    reasons = [f["reason"] for f in pull.failures]
    assert "closed" in reasons[0] and "refused" in reasons[1].lower()
    assert "protocol error" in reasons[2] and "refused" in reasons[3]
    assert "did not start playing" in reasons[4]
    # Garbage after media: a protocol error, or what parses as the start of a message that never ends.
    assert "protocol error" in reasons[5] or "no media" in reasons[5]
    assert "no media" in reasons[6]  # stalled mid-message
    assert "protocol error" in reasons[7] and "over the limit 8388608" in reasons[7]
    assert pull.delivering == last and len(pull.failures) == 8

    video = [(ts, body) for kind, ts, body in stream.media if kind == VIDEO]
    stamps = [ts for ts, _ in video]
    assert stamps == sorted(stamps), "timestamps went back"
    # Every origin that delivered was spliced in at a keyframe, one frame after the last timestamp.
    splices = pull.splicer.splices
    assert [dict(s.note)["origin"][7:14] for s in splices[:4]] == ["origin5", "origin6", "origin7", "origin8"]
    for splice in splices:
        index = next(i for i, (kind, ts, body) in enumerate(stream.media)
                     if ts == splice.timestamp_ms and kind == VIDEO and body[:2] == b"\x17\x01")  # a keyframe
        assert splice.timestamp_ms - max(ts for _, ts, _ in stream.media[:index]) == 40
    # Sequence headers and metadata reached the stream once: every origin had the same.
    assert sum(1 for _, _, body in stream.media if body in (AVC_HEADER, AAC_HEADER)) == 2
    assert len(stream.data) == 1 and stream.data[0][0] == "onMetaData"
    info = pull.info()
    assert info["switches"] == len(splices) and info["switch_log"][0]["previous_origin"].startswith("rtmp://origin0")


def test_every_origin_failing_pauses_between_rounds():
    pull, stream, tasks, attempts = pulling([("unreachable", 0, 0), ("refuse", 0, 0)])
    asyncio.run(run_pull(pull, tasks, 0.55))
    # 0.1 s retry pause after each failed round: a handful of attempts, not thousands.
    assert 4 <= len(attempts) <= 16
    assert not stream.media and pull.state == "waiting"


@pytest.mark.parametrize("gone", ["close", "silent"])
def test_a_single_origin_that_comes_back_is_spliced_onto_itself(gone):
    pull, stream, tasks, attempts = pulling([(gone, 15, 0)])
    asyncio.run(run_pull(pull, tasks, 2, until=lambda: pull.splicer.splices and len(stream.media) > 50))
    assert len(attempts) >= 2 and pull.splicer.splices
    stamps = [ts for kind, ts, _ in stream.media if kind == VIDEO]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps) - 1  # only the header shares a stamp
    assert all(kind != DATA_AMF0 for kind, _, _ in stream.media)
