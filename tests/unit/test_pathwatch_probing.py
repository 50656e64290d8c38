"""Bounded probing and RTT-derived timeouts of the path watcher (pure parts, in memory)."""

import heapq
import random
import socket
import struct

import pytest
from mpstream.paths.pathwatch import config, echoes, watcher
from mpstream.paths.pathwatch.rtt import RttEstimator
from mpstream.paths.pathwatch.schedule import Rotation, interleaved
from mpstream.paths.pathwatch.tracker import DOWN, UP, Tracker

INTERVAL = 0.1


def probes(peers: int, families=(4, 6)) -> list[config.Probe]:
    made = []
    for version in families:
        for i in range(peers):
            if version == 4:
                made.append(config.Probe("isp1", "198.18.0.1", f"198.18.1.{i + 1}", f"peer{i}"))
            else:
                made.append(config.Probe("isp1", "2001:2::1", f"2001:2:1::{i + 1:x}", f"peer{i}"))
    return made


def simulate(tracker, rotation, until, rtt_of, start=0.0, step=0.005, report_sends=True):
    """Probe rounds every INTERVAL; `rtt_of(probe, sent)`: seconds until its answer, None if lost.
    Returns the tracker's transitions as (time, new state). Without `report_sends` the
    tracker learns neither probes nor round-trip times, only that answers came: silence
    decides, as before the RTT-derived rule."""
    in_flight: list[tuple[float, str, float]] = []
    transitions = []
    next_round, now = start, start
    while now < until:
        while in_flight and in_flight[0][0] <= now:
            arrival, target, sent = heapq.heappop(in_flight)
            if report_sends:
                transitions += tracker.reply("isp1", arrival, target, arrival - sent)
            else:
                transitions += tracker.reply("isp1", arrival)
        if now >= next_round - 1e-9:
            for probe in rotation.round(tracker.anchor("isp1", now)):
                if report_sends:
                    tracker.sent("isp1", probe.target, now, probe.peer)
                rtt = rtt_of(probe, now)
                if rtt is not None:
                    heapq.heappush(in_flight, (now + rtt, probe.target, now))
            next_round += INTERVAL
        transitions += tracker.tick(now)
        now += step
    return [(round(t.at, 3), t.new) for t in transitions]


@pytest.mark.parametrize("peers", [2, 10, 40])
def test_a_round_has_the_same_number_of_probes_whatever_the_number_of_peers(peers):
    rotation = Rotation(probes(peers), per_round=2)
    rounds = [rotation.round(anchor="2001:2:1::1") for _ in range(2 * peers)]
    assert {len(r) for r in rounds} == {2}
    assert all(r[0].target == "2001:2:1::1" for r in rounds)  # the anchor first, every round
    # Every address of every peer, both families, within 2 x peers rounds.
    assert {p.target for r in rounds for p in r} == {p.target for p in probes(peers)}
    assert Rotation(probes(peers), per_round=None).round() == interleaved(probes(peers))


def test_families_take_turns_and_consecutive_probes_go_to_different_peers():
    order = interleaved(probes(3))
    assert [p.version for p in order] == [4, 6, 4, 6, 4, 6]
    assert all(a.peer != b.peer for a, b in zip(order, order[1:] + order[:1], strict=False))
    assert [p.target for p in interleaved(probes(3, families=(6,)))] == ["2001:2:1::1", "2001:2:1::2", "2001:2:1::3"]


def test_a_single_probe_a_round_rotates_over_all_peers_whatever_the_anchor():
    rotation = Rotation(probes(3, families=(4,)), per_round=1)
    assert [rotation.round(anchor="198.18.1.1")[0].target for _ in range(3)] == [
        "198.18.1.1",
        "198.18.1.2",
        "198.18.1.3",
    ]


def test_the_anchor_is_the_quickest_peer_that_answers():
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0)
    assert tracker.anchor("isp1", 0.0) is None
    for target, rtt in (("a", 0.050), ("b", 0.002), ("c", 0.010)):
        tracker.sent("isp1", target, 0.0)
        tracker.reply("isp1", rtt, target, rtt)
    assert tracker.anchor("isp1", 0.1) == "b"
    tracker.sent("isp1", "b", 0.1)  # b is gone: late after its srtt + 4 rttvar
    assert tracker.anchor("isp1", 0.105) == "b"
    assert tracker.anchor("isp1", 0.2) == "c"


def test_a_round_never_holds_a_probe_twice():
    rotation = Rotation(probes(2, families=(4,)), per_round=2)
    for _ in range(5):
        chosen = rotation.round(anchor="198.18.1.2")
        assert len({p.target for p in chosen}) == 2


def test_the_ledger_matches_replies_by_sequence_and_sender_once():
    ledger = echoes.Ledger()
    first = ledger.sent("198.18.1.1", 1.0)
    second = ledger.sent("198.18.1.2", 1.1)
    assert ledger.answered(first, "198.18.1.2") is None  # someone else's address
    assert ledger.answered(second, "198.18.1.2") == ("198.18.1.2", 1.1)
    assert ledger.answered(second, "198.18.1.2") is None  # a duplicate
    ledger.sent("198.18.1.3", 1.0 + echoes.HORIZON + 1)
    assert len(ledger) == 1  # the old unanswered one is forgotten


def test_rtt_estimator_follows_rfc6298():
    estimator = RttEstimator()
    assert estimator.rto() == 0.0 and not estimator.known
    estimator.sample(0.3)
    assert (estimator.srtt, estimator.rttvar) == (0.3, 0.15)
    for _ in range(100):
        estimator.sample(0.3)
    assert estimator.srtt == pytest.approx(0.3)
    assert estimator.rto() == pytest.approx(0.3, abs=1e-6)


def test_the_threshold_is_down_after_on_short_paths_and_grows_with_the_rtt_up_to_a_cap():
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0, rtt_factor=2.0, down_after_max=3.0)
    assert tracker.threshold("isp1") == 0.3  # nothing measured yet
    tracker.reply("isp1", 0.1, "a", 0.001)
    assert tracker.threshold("isp1") == 0.3
    for i in range(50):
        tracker.reply("isp1", 1.0 + i, "a", 0.3)
    assert tracker.threshold("isp1") == pytest.approx(0.6, abs=0.01)
    for i in range(50):
        tracker.reply("isp1", 100.0 + i, "a", 5.0)
    assert tracker.threshold("isp1") == 3.0


def test_silence_alone_is_not_enough_probes_to_two_peers_must_be_late():
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0)
    for target in ("a", "b"):
        tracker.sent("isp1", target, 0.0, target)
        tracker.reply("isp1", 0.001, target, 0.001)
    tracker.sent("isp1", "a", 0.1)
    assert tracker.tick(1.0) == []  # only peer a went unanswered since (it may be gone)
    tracker.sent("isp1", "b", 1.0)
    (down,) = tracker.tick(1.01)
    assert down.new == DOWN and down.reason.startswith("no probe answered for 1.01 s")


def test_with_a_single_peer_its_silence_is_enough():
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0)
    tracker.sent("isp1", "a", 0.0)
    tracker.reply("isp1", 0.001, "a", 0.001)
    tracker.sent("isp1", "a", 0.1)
    assert tracker.tick(0.3) == []
    assert tracker.tick(0.302)[0].new == DOWN


def test_one_dead_peer_does_not_take_a_working_provider_down():
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0)
    rotation = Rotation(probes(2), per_round=2)
    alive = lambda probe, sent: 0.001 if probe.peer == "peer0" else None  # noqa: E731
    assert simulate(tracker, rotation, 30.0, alive) == [(0.001, UP)]


def test_many_dead_peers_do_not_either_the_anchor_keeps_answering():
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0)
    rotation = Rotation(probes(40), per_round=2)
    alive = lambda probe, sent: 0.002 if probe.peer in ("peer7", "peer31") else None  # noqa: E731
    assert [new for _, new in simulate(tracker, rotation, 30.0, alive)] == [UP]
    # Without an anchor (every probe rotating), the same network looks down again and again.
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0)
    rotation = Rotation(probes(40), per_round=2)
    tracker.anchor = lambda provider, now: None
    assert [new for _, new in simulate(tracker, rotation, 30.0, alive)].count(DOWN) > 3


def test_a_short_path_is_declared_down_within_a_third_of_a_second():
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0)
    rotation = Rotation(probes(10), per_round=2)
    dies = 5.0
    network = lambda probe, sent: 0.001 if sent < dies else None  # noqa: E731
    transitions = simulate(tracker, rotation, 8.0, network)
    assert transitions[0] == (0.001, UP)
    ((at, new),) = transitions[1:]
    assert new == DOWN
    assert dies + 0.29 <= at <= dies + 0.31


def jittery_300ms(dies=None, seed=1):
    """A 300 ms path whose queue fills now and then (0.4 s more for 0.5-1 s, every 3 s or
    so), 0-50 ms of jitter, 2 % of the answers lost."""
    rng = random.Random(seed)
    spikes, start = [], 1.0
    while start < 100:
        length = rng.uniform(0.5, 1.0)
        spikes.append((start, start + length))
        start += length + rng.uniform(1.5, 3.0)

    def rtt_of(probe, sent):
        if (dies is not None and sent >= dies) or rng.random() < 0.02:
            return None
        queued = 0.4 if any(a <= sent < b for a, b in spikes) else 0.0
        return 0.3 + queued + rng.uniform(0.0, 0.05)

    return rtt_of


def test_a_300ms_path_whose_queue_fills_does_not_flap():
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0, rtt_factor=2.0)
    transitions = simulate(tracker, Rotation(probes(10), per_round=2), 60.0, jittery_300ms())
    assert [new for _, new in transitions] == [UP]
    assert 0.6 < tracker.threshold("isp1") < 2.0
    # The fixed 0.3 s of silence of before on the same network: down at the start and again.
    fixed = Tracker(["isp1"], down_after=0.3, now=0.0, rtt_factor=0.0)
    transitions = simulate(fixed, Rotation(probes(10), per_round=None), 60.0, jittery_300ms(), report_sends=False)
    assert [new for _, new in transitions].count(DOWN) >= 3


def test_a_300ms_path_that_dies_is_still_declared_down_within_its_threshold():
    dies = 20.0
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0, rtt_factor=2.0)
    transitions = simulate(tracker, Rotation(probes(10), per_round=2), 25.0, jittery_300ms(dies))
    assert [new for _, new in transitions] == [UP, DOWN]
    threshold = tracker.threshold("isp1")
    # The last answers arrive up to 0.55 s after the failure; then the threshold, and one round.
    assert transitions[1][0] <= dies + 0.55 + threshold + INTERVAL


def test_a_far_path_is_not_declared_down_before_its_first_answers_arrive():
    tracker = Tracker(["isp1"], down_after=0.3, now=0.0)
    far = lambda probe, sent: 0.35  # noqa: E731
    assert simulate(tracker, Rotation(probes(5), per_round=2), 5.0, far) == [(0.35, UP)]


def test_config_reads_the_probing_settings_and_refuses_bad_ones():
    data = {"providers": [{"name": "isp1", "probes": [{"source": "198.18.0.1", "target": "198.18.1.1", "peer": "s1"}]}]}
    parsed = config.from_dict(data)
    assert (parsed.probes_per_round, parsed.probe_all, parsed.rtt_factor) == (2, False, 2.0)
    assert parsed.providers["isp1"].probes[0].peer == "s1"
    assert config.from_dict({**data, "probe_all": True}).probe_all
    for bad in ({"probes_per_round": 0}, {"rtt_factor": -1}, {"down_after": 1.0, "down_after_max": 0.5}):
        with pytest.raises(config.ConfigError):
            config.from_dict({**data, **bad})
    assert config.parse_probe("isp1,198.18.0.1,198.18.1.1") == ("isp1", "198.18.0.1", "198.18.1.1", "")


def test_a_reply_waited_in_the_socket_for_its_kernel_timestamp_to_now():
    stamp = struct.pack("=qq", 1_000, 250_000_000)  # 1000.25 s
    ancillary = [(socket.SOL_SOCKET, watcher.SO_TIMESTAMPNS, stamp)]
    assert watcher.queued_for(ancillary, 1000.75) == pytest.approx(0.5)
    # Other ancillary data, none at all, a short one, or a clock stepped back: read now.
    assert watcher.queued_for([(socket.IPPROTO_IP, 8, stamp)], 1000.75) == 0.0
    assert watcher.queued_for([], 1000.75) == 0.0
    assert watcher.queued_for([(socket.SOL_SOCKET, watcher.SO_TIMESTAMPNS, stamp[:8])], 1000.75) == 0.0
    assert watcher.queued_for(ancillary, 999.0) == 0.0
