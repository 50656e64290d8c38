#!/usr/bin/env python3
"""A minimal live relay on pyrtmp, a peer for benchmarks/relay_fanout.py.

pyrtmp (PyPI) is a server library that takes a publisher but has no play and no fan-out
of its own: this adds the least that makes it a relay, with pyrtmp's own parsing and
chunking. A `play` is answered with StreamBegin and NetStream.Play.Start, the stream's
sequence headers follow, then every audio and video message of the publisher is written
to every player as pyrtmp chunks it (type-0 headers: its header compression cannot carry
timestamp deltas between messages). No GOP cache, no slow-player handling.

    .cache/bench-peers/pyrtmp-venv/bin/python benchmarks/peers/pyrtmp_relay.py HOST PORT

Runs until SIGTERM or SIGINT. Made for `make bench-peers` (pyrtmp 0.3.1 in its own venv).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from bitstring import BitStream
from pyrtmp.amf.serializers import AMF0Serializer
from pyrtmp.messages import Chunk
from pyrtmp.messages.audio import AudioMessage
from pyrtmp.messages.command import CommandMessage
from pyrtmp.messages.user_control import StreamBegin
from pyrtmp.messages.video import VideoMessage
from pyrtmp.rtmp import RTMPProtocol, SimpleRTMPController
from pyrtmp.session_manager import SessionManager

VIDEO, AUDIO = 0x09, 0x08
CSID = {VIDEO: 6, AUDIO: 4}
PLAYER_STREAM_ID = 1  # what pyrtmp's createStream answers, always


class Hub:
    """The one stream: its players and the sequence headers a decoder needs first."""

    def __init__(self) -> None:
        self.players: set[SessionManager] = set()
        self.headers: dict[int, Chunk] = {}


def play_start() -> Chunk:
    data = BitStream()
    for value in ("onStatus", 0, None, {"level": "status", "code": "NetStream.Play.Start",
                                        "description": "Started playing."}):
        AMF0Serializer.create_object(data, value)
    return Chunk(chunk_type=0, chunk_id=5, timestamp=0, msg_length=len(data.bytes), msg_type_id=0x14,
                 msg_stream_id=PLAYER_STREAM_ID, payload=data.bytes)


def is_sequence_header(message: Chunk) -> bool:
    payload = message.payload
    return len(payload) > 1 and payload[1] == 0 and (message.msg_type_id == AUDIO or payload[0] & 0x0F == 7)


def forward(player: SessionManager, message: Chunk) -> None:
    player.previous_chunk_for_writing = None  # a type-0 header with the absolute timestamp
    player.write_chunk_to_stream(Chunk(chunk_type=0, chunk_id=CSID[message.msg_type_id],
                                       timestamp=message.timestamp, msg_length=message.msg_length,
                                       msg_type_id=message.msg_type_id, msg_stream_id=PLAYER_STREAM_ID,
                                       payload=message.payload))


class RelayController(SimpleRTMPController):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def on_unknown_message(self, session: SessionManager, message: Chunk) -> None:
        if isinstance(message, CommandMessage) and message.command_name == "play":
            session.write_chunk_to_stream(StreamBegin(stream_id=PLAYER_STREAM_ID))
            session.write_chunk_to_stream(play_start())
            for header in self.hub.headers.values():
                forward(session, header)
            await session.drain()
            self.hub.players.add(session)

    async def on_video_message(self, session: SessionManager, message: VideoMessage) -> None:
        self._fan_out(message)

    async def on_audio_message(self, session: SessionManager, message: AudioMessage) -> None:
        self._fan_out(message)

    def _fan_out(self, message: Chunk) -> None:
        if is_sequence_header(message):
            self.hub.headers[message.msg_type_id] = message
        for player in self.hub.players:
            forward(player, message)

    async def cleanup(self, session: SessionManager) -> None:
        self.hub.players.discard(session)


async def main(host: str, port: int) -> None:
    hub = Hub()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RTMPProtocol(controller=RelayController(hub)), host=host, port=port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # pyrtmp logs every chunk at DEBUG from its import on
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
