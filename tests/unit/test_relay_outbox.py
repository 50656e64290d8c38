"""A player's queue: bounded in time, skipping to the next keyframe, never dropping control messages."""

from mpstream.streaming.relay.outbox import ALWAYS, KEYFRAME, ORDINARY, Outbox


def make(lag=1.0):
    clock = [0.0]
    return Outbox(lag, lambda: clock[0]), clock


def test_media_and_control_leave_in_order_in_one_buffer():
    box, _ = make()
    assert box.push_media((b"a", True), ORDINARY, 0.0) is True
    box.push_control(b"c")
    assert box.push_media((b"b", True), ORDINARY, 0.1) is False
    assert box.take() == b"acb" and len(box) == 0 and box.take() == b""


def test_falling_behind_drops_media_keeps_control_and_waits_for_keyframe():
    box, _ = make(lag=1.0)
    box.push_media((b"k1", True), KEYFRAME, 0.0)
    box.push_control(b"status")
    box.push_media((b"p1", True), ORDINARY, 0.5)
    box.push_media((b"p2", True), ORDINARY, 1.5)  # oldest is 1.5 s old: skip
    assert box.skips == 1 and box.waiting_keyframe and box.behind_since == 1.5
    box.push_media((b"p3", True), ORDINARY, 1.6)
    box.push_media((b"hdr", True), ALWAYS, 1.7)
    assert box.waiting_keyframe  # headers pass but do not end the wait
    box.push_media((b"k2", True), KEYFRAME, 1.8)
    box.push_media((b"p4", True), ORDINARY, 1.9)
    assert box.take() == b"statushdrk2p4"
    assert box.dropped == 4  # k1, p1, p2, p3
    box.caught_up()
    assert box.behind_since is None


def test_waiting_player_stays_behind_until_a_keyframe_arrives():
    box, _ = make()
    box.waiting_keyframe = True
    box.behind_since = 3.0
    box.push_media((b"p", True), ORDINARY, 3.1)
    box.caught_up()
    assert box.behind_since == 3.0 and box.take() == b""
