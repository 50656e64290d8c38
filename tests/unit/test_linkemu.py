"""The link emulator without a kernel: release times, loss, and the NFQUEUE messages."""

from __future__ import annotations

import random
import statistics
import struct

import pytest
from mpstream.paths.linkemu import nfqueue
from mpstream.paths.linkemu.runner import Emulator, build_parser
from mpstream.paths.linkemu.schedule import Link, LinkSpec


def kernel_packet(queue: int, packet_id: int, family: int = 2) -> bytes:
    """A packet message as the kernel sends it in metadata mode: packet header, then more attributes."""
    attrs = (struct.pack("=HH", 4 + 7, nfqueue.NFQA_PACKET_HDR) + struct.pack("!IHB", packet_id, 0x0800, 1)
             + b"\0" + struct.pack("=HH", 8, 11) + struct.pack("!I", 1500))
    header = struct.pack("=IHHII", 16 + 4 + len(attrs), nfqueue.NFQNL_MSG_PACKET, 0, 0, 0)
    return header + struct.pack("!BBH", family, 0, queue) + attrs


def decode(data: bytes) -> list[tuple[str, int, int, int]]:
    """(kind, queue, verdict, id) of each verdict message in a buffer we would send."""
    out, offset = [], 0
    while offset < len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        queue = struct.unpack_from("!H", data, offset + 18)[0]
        size, attr = struct.unpack_from("=HH", data, offset + 20)
        assert attr == nfqueue.NFQA_VERDICT_HDR and size == 12
        verdict, packet_id = struct.unpack_from("!II", data, offset + 24)
        name = {nfqueue.NFQNL_MSG_VERDICT: "one", nfqueue.NFQNL_MSG_VERDICT_BATCH: "batch"}[kind]
        out.append((name, queue, verdict, packet_id))
        offset += length
    return out


def test_link_spec_from_the_command_line():
    spec = LinkSpec.parse("7:20:2.5:0.5")
    assert (spec.queue, spec.delay, spec.jitter, spec.loss) == (7, 0.020, 0.0025, 0.005)
    assert LinkSpec.parse("3:150") == LinkSpec(3, 0.150)
    assert LinkSpec.parse(spec.argument()) == spec


@pytest.mark.parametrize("text,message", [
    ("7", "expected QUEUE:DELAY_MS"),
    ("a:20", "expected numbers"),
    ("1:5:10", "jitter 10 ms exceeds the delay 5 ms"),
    ("1:5:0:100", "below 100 %"),
    ("70000:5", "not a 16-bit NFQUEUE number"),
])
def test_bad_link_specs_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        LinkSpec.parse(text)


def test_delay_without_jitter_releases_each_packet_after_the_delay():
    link = Link(LinkSpec(1, delay=0.020))
    for packet_id, now in enumerate([0.0, 0.001, 0.5], 1):
        assert link.arrive(packet_id, now)
    assert link.next_release() == pytest.approx(0.020)
    assert link.release_due(0.0199) is None
    assert link.release_due(0.0215) == 2  # both early packets: one batch up to id 2
    assert link.next_release() == pytest.approx(0.520)
    assert link.release_due(1.0) == 3 and link.next_release() is None


def test_jitter_spreads_release_times_but_never_reorders_a_link():
    link = Link(LinkSpec(1, delay=0.050, jitter=0.010), random.Random(4))
    # Sparse packets (100 ms apart) show the jitter's full spread, +-10 ms uniform.
    offsets = []
    for n in range(2000):
        link.arrive(n, n * 0.1)
        release, _ = link.held.pop()
        offsets.append(release - n * 0.1 - 0.050)
        link.last_release = float("-inf")
    assert -0.010 <= min(offsets) < -0.0095 and 0.0095 < max(offsets) <= 0.010
    assert statistics.pstdev(offsets) == pytest.approx(0.010 / 3 ** 0.5, rel=0.05)
    # Dense packets (1 ms apart, closer than the jitter): release times stay in arrival order.
    dense = Link(LinkSpec(1, delay=0.050, jitter=0.010), random.Random(5))
    for n in range(1000):
        dense.arrive(n, n * 0.001)
    releases = [release for release, _ in dense.held]
    assert releases == sorted(releases)
    assert all(release >= n * 0.001 + 0.040 for n, release in enumerate(releases))


def test_loss_rate_over_ten_thousand_packets():
    link = Link(LinkSpec(1, delay=0.010, loss=0.02), random.Random(7))
    kept = sum(link.arrive(n, n * 0.001) for n in range(10_000))
    assert link.dropped == 10_000 - kept
    assert 0.8 * 200 <= link.dropped <= 1.2 * 200
    assert len(link.held) == kept


def test_verdict_and_bind_messages_have_the_kernel_layout():
    one = nfqueue.verdict(5, 0x01020304, accept=False)
    assert decode(one) == [("one", 5, nfqueue.NF_DROP, 0x01020304)]
    assert struct.unpack_from("=IH", one, 0)[1] & 0xFF00 == nfqueue.NFNL_SUBSYS_QUEUE << 8
    assert decode(nfqueue.verdict(9, 77, batch=True)) == [("batch", 9, nfqueue.NF_ACCEPT, 77)]
    bind = nfqueue.bind_request(3, 4096, seq=42)
    length, kind, flags, seq = struct.unpack_from("=IHHI", bind)
    assert (length, kind, seq) == (len(bind), nfqueue.NFQNL_MSG_CONFIG, 42) and flags & nfqueue.NLM_F_ACK
    assert len(bind) % 4 == 0
    assert struct.pack("!IB", 0, nfqueue.NFQNL_COPY_META) in bind  # metadata only: no payload copied


def test_parse_reads_packets_and_acknowledgements_from_one_buffer():
    error = struct.pack("=IHHII", 36, nfqueue.NLMSG_ERROR, 0, 7, 0) + struct.pack("=i", -16) + \
        struct.pack("=IHHII", 20, nfqueue.NFQNL_MSG_CONFIG, 5, 42, 0)
    buffer = kernel_packet(3, 10) + error + kernel_packet(4, 11, family=10)
    assert list(nfqueue.parse(buffer)) == [("packet", 3, 10), ("error", 42, 16), ("packet", 4, 11)]
    assert list(nfqueue.parse(buffer + b"\0" * 100, len(buffer))) == list(nfqueue.parse(buffer))


def test_the_emulator_holds_packets_and_releases_each_link_with_one_batch_verdict():
    emulator = Emulator([LinkSpec(1, 0.010), LinkSpec(2, 0.030), LinkSpec(3, 0.010, loss=0.5)], maxlen=100, seed=1)
    out: list[bytes] = []
    events = [("packet", 1, 100), ("packet", 2, 200), ("packet", 1, 101), ("packet", 9, 900)]
    emulator.arrive(events, 0.0, out)
    assert decode(b"".join(out)) == [("one", 9, nfqueue.NF_ACCEPT, 900)]  # not ours: never held
    assert emulator.release(0.009) == b""
    assert decode(emulator.release(0.0101)) == [("batch", 1, nfqueue.NF_ACCEPT, 101)]
    assert decode(emulator.release(0.031)) == [("batch", 2, nfqueue.NF_ACCEPT, 200)]
    out.clear()
    emulator.arrive([("packet", 3, n) for n in range(400)], 1.0, out)
    dropped = [d for d in decode(b"".join(out)) if d[2] == nfqueue.NF_DROP]
    assert 150 < len(dropped) < 250 and all(d[0] == "one" and d[1] == 3 for d in dropped)
    kept = sorted(set(range(400)) - {d[3] for d in dropped})
    assert decode(emulator.release(1.02)) == [("batch", 3, nfqueue.NF_ACCEPT, kept[-1])]
    assert emulator.timers == []


def test_the_command_line_takes_one_option_per_link():
    args = build_parser().parse_args(["--link", "1:20", "--link", "2:20:2:0.1", "--seed", "3"])
    assert [link.queue for link in args.link] == [1, 2] and args.link[1].loss == pytest.approx(0.001)
    with pytest.raises(ValueError, match="same queue"):
        Emulator([LinkSpec(1, 0.01), LinkSpec(1, 0.02)], maxlen=10)
