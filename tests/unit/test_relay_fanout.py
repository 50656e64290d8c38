"""A stream's fan-out: one shared write per flush for players that keep up, the outbox for the others."""

import asyncio
import time

from mpstream.streaming.relay.fanout import FanOut
from mpstream.streaming.relay.outbox import KEYFRAME, ORDINARY, Outbox
from mpstream.streaming.rtmp import VIDEO, shared_media

CHUNK = 4096


class Player:
    """What FanOut uses of a relay connection, with the bytes it was given in order."""

    def __init__(self):
        self.outbox = Outbox(10.0, time.monotonic)
        self.output_budget = 1 << 20
        self.paused = False
        self.closed = False
        self.received = bytearray()
        self.shared_writes = 0

    def write_shared(self, data: bytes) -> None:
        self.received += data
        self.shared_writes += 1

    def flush(self) -> None:
        if not (self.closed or self.paused):
            self.received += self.outbox.take()
            self.outbox.caught_up()

    def drop_over_output_budget(self) -> None:
        self.closed = True


def frame(n: int) -> bytes:
    return (b"\x17" if n % 10 == 0 else b"\x27") + b"\x01" + n.to_bytes(4, "big") + bytes(3000)


def run(scenario):
    async def main():
        fan_out = FanOut(CHUNK, 10.0)  # flushed by hand here
        scenario(fan_out)
        fan_out.flush()
    asyncio.run(main())


def send(fan_out: FanOut, numbers) -> bytes:
    for n in numbers:
        fan_out.send(VIDEO, 40 * n, frame(n), KEYFRAME if n % 10 == 0 else ORDINARY)
    return b"".join(shared_media(VIDEO, 1, 40 * n, frame(n), CHUNK) for n in numbers)


def test_players_that_keep_up_get_one_write_per_flush_and_every_message_once_in_order():
    def scenario(fan_out):
        steady, stalled = Player(), Player()
        fan_out.add(steady, 1)
        fan_out.add(stalled, 1)
        fan_out.flush()  # both caught up: live
        assert set(fan_out.live) == {steady, stalled}
        expected = send(fan_out, range(0, 5))
        stalled.paused = True  # its transport is full
        fan_out.flush()
        assert steady.received == expected and steady.shared_writes == 1
        assert stalled.received == b"" and set(fan_out.queued) == {stalled}  # the batch waits in its outbox
        expected += send(fan_out, range(5, 8))
        fan_out.flush()
        assert steady.shared_writes == 2 and stalled.received == b""
        stalled.paused = False  # drained: its outbox goes out, then it is live again
        fan_out.flush()
        assert stalled.received == expected and set(fan_out.live) == {steady, stalled}
        expected += send(fan_out, range(8, 12))
        fan_out.flush()
        assert steady.received == stalled.received == expected
    run(scenario)


def test_a_new_publisher_holds_every_player_until_its_keyframe():
    def scenario(fan_out):
        player = Player()
        fan_out.add(player, 1)
        fan_out.flush()
        fan_out.hold_all()
        player.outbox.waiting_keyframe = True
        send(fan_out, [1, 2])  # not keyframes: dropped while it waits
        fan_out.flush()
        assert player.received == b"" and player in fan_out.queued
        expected = send(fan_out, [10, 11])
        fan_out.flush()
        assert player.received == expected and player in fan_out.live
    run(scenario)


def test_a_player_over_its_output_budget_is_dropped():
    def scenario(fan_out):
        player = Player()
        player.output_budget = 10_000
        fan_out.add(player, 1)
        fan_out.flush()
        player.paused = True
        send(fan_out, range(0, 5))  # 15 kB for a player that takes nothing
        fan_out.flush()
        assert player.closed
    run(scenario)
