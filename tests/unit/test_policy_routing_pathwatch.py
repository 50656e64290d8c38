"""The path watcher's pure parts (provider tracking, echo packets, netlink parsing, config) and the
addresses in use, read over sock_diag from real sockets on loopback in a network namespace of the test's own."""

import socket
import struct

import pytest
from mpstream.paths.pathwatch import config, icmp, netlink_events
from mpstream.paths.pathwatch.tracker import DOWN, UNKNOWN, UP, Tracker


def test_provider_goes_down_after_silence_and_up_at_the_first_answer():
    tracker = Tracker(["isp1", "isp2"], down_after=0.6, now=0.0)
    assert tracker.reply("isp1", 0.1)[0].new == UP
    assert tracker.reply("isp2", 0.1)[0].new == UP
    assert tracker.tick(0.5) == []
    tracker.reply("isp1", 0.5)
    down = tracker.tick(0.75)
    assert [(t.provider, t.new) for t in down] == [("isp2", DOWN)]
    assert tracker.tick(1.0) == []  # reported once
    back = tracker.reply("isp2", 3.75)
    assert [(t.provider, t.old, t.new) for t in back] == [("isp2", DOWN, UP)]
    assert back[0].outage == pytest.approx(3.0)


def test_silence_counts_from_restart_not_from_construction():
    tracker = Tracker(["isp1"], down_after=0.5, now=0.0)
    tracker.restart(10.0)
    assert tracker.tick(10.4) == []
    assert tracker.state("isp1") == UNKNOWN
    assert tracker.tick(10.5)[0].new == DOWN


def test_carrier_loss_is_down_at_once_and_answers_do_not_override_it():
    tracker = Tracker(["isp1"], down_after=0.6, now=0.0)
    tracker.reply("isp1", 0.1)
    assert tracker.link("isp1", "nic1", False, 0.2)[0].reason == "nic1 lost carrier"
    assert tracker.reply("isp1", 0.3) == []
    assert tracker.link("isp1", "nic1", True, 0.4) == []  # back only when a probe gets through
    assert tracker.reply("isp1", 0.5)[0].new == UP


def test_a_returned_provider_is_re_created_only_while_another_one_answers():
    tracker = Tracker(["isp1", "isp2"], down_after=0.5, now=0.0)
    tracker.reply("isp1", 0.1)
    tracker.reply("isp2", 0.1)
    tracker.tick(0.7)  # both silent: both down
    tracker.reply("isp1", 1.0)  # isp1 back alone: its own subflows are the only path, left alone
    assert tracker.due(1.2, settle=0.3, fresh=0.15, give_up=0.3) == ([], [])  # settling
    assert tracker.due(1.35, settle=0.3, fresh=0.15, give_up=0.3) == ([], ["isp1"])
    tracker.reply("isp2", 2.0)  # isp2 back while isp1 keeps answering
    tracker.reply("isp1", 2.2)
    assert tracker.due(2.2, settle=0.3, fresh=0.15, give_up=0.3) == ([], [])  # isp2 still settling
    tracker.reply("isp1", 2.3)
    assert tracker.due(2.35, settle=0.3, fresh=0.15, give_up=0.3) == (["isp2"], [])
    assert tracker.due(2.5, settle=0.3, fresh=0.15, give_up=0.3) == ([], [])  # once


def test_a_provider_back_alone_without_live_subflows_is_re_created():
    tracker = Tracker(["isp1", "isp2"], down_after=0.5, now=0.0)
    tracker.reply("isp1", 0.1)
    tracker.tick(0.55)  # isp2 down
    tracker.reply("isp1", 1.0)  # isp1 fails now, as isp2 returns with all its subflows timed out
    tracker.reply("isp2", 1.05)
    assert tracker.due(1.35, settle=0.3, fresh=0.15, give_up=0.3, expendable=lambda p: p == "isp2") == (
        ["isp2"],
        [],
    )


def far_provider_back_as_the_other_fails():
    """isp2 (280 ms round trips) returns at 2.05 as isp1 (40 ms) gives its last answer at 2.0."""
    tracker = Tracker(["isp1", "isp2"], down_after=0.5, now=0.0)
    tracker.reply("isp1", 0.1, "p1", 0.04)
    tracker.reply("isp2", 0.3, "p2", 0.28)
    tracker.link("isp2", "nic2", False, 1.0)
    tracker.link("isp2", "nic2", True, 2.0)
    tracker.reply("isp1", 2.0, "p1", 0.04)
    tracker.reply("isp2", 2.05, "p2", 0.28)
    return tracker


def test_peers_get_two_of_a_far_providers_round_trips_to_re_join_before_it_is_re_announced():
    def due(tracker, now, rejoin_rtts):
        return tracker.due(now, settle=0.3, fresh=0.15, give_up=0.3, expendable=lambda p: p == "isp2",
                           rejoin_rtts=rejoin_rtts)

    # Without: at `settle`, while the peers' joins were still on their way (1.5 round trips).
    assert due(far_provider_back_as_the_other_fails(), 2.36, 0.0) == (["isp2"], [])
    tracker = far_provider_back_as_the_other_fails()
    assert due(tracker, 2.36, 2.0) == ([], [])
    assert due(tracker, 2.9, 2.0) == ([], [])  # 0.3 s + 2 x 0.28 s after 2.05: not yet
    assert due(tracker, 2.92, 2.0) == (["isp2"], [])


def test_a_far_provider_back_alone_is_given_up_only_after_its_re_join_time():
    tracker = far_provider_back_as_the_other_fails()  # its subflows alive (not expendable)
    assert tracker.due(2.62, settle=0.3, fresh=0.15, give_up=0.3, rejoin_rtts=2.0) == ([], [])
    assert tracker.due(2.92, settle=0.3, fresh=0.15, give_up=0.3, rejoin_rtts=2.0) == ([], ["isp2"])


def test_a_provider_back_while_the_other_fails_is_not_re_created():
    tracker = Tracker(["isp1", "isp2"], down_after=0.5, now=0.0)
    tracker.reply("isp1", 0.1)
    tracker.tick(0.55)  # isp2 never answered: down
    tracker.reply("isp1", 1.0)  # isp1's last answer: it fails now ...
    tracker.reply("isp2", 1.05)  # ... just as isp2 comes back
    assert tracker.due(1.35, settle=0.3, fresh=0.15, give_up=0.3) == ([], ["isp2"])


def test_a_provider_whose_subflows_this_node_opens_is_re_created_at_once_even_alone():
    tracker = Tracker(["isp1", "isp2"], down_after=0.5, now=0.0)
    tracker.reply("isp1", 0.1)
    tracker.tick(0.55)  # isp2 down
    tracker.reply("isp1", 1.0)  # isp1 fails now, as isp2 returns (phase 3 of the paper)
    tracker.reply("isp2", 1.05)
    # No settling and no other provider needed: the node opens the subflows itself.
    assert tracker.due(1.06, settle=0.3, fresh=0.15, give_up=0.3, self_reliant=lambda p: True) == (["isp2"], [])
    assert tracker.due(1.5, settle=0.3, fresh=0.15, give_up=0.3, self_reliant=lambda p: True) == ([], [])  # once


def test_others_answer_counts_only_other_providers_that_are_up_and_fresh():
    tracker = Tracker(["isp1", "isp2"], down_after=0.5, now=0.0)
    tracker.reply("isp1", 0.1)
    tracker.reply("isp2", 0.1)
    assert tracker.others_answer("isp2", 0.2, fresh=0.3)
    assert not tracker.others_answer("isp2", 0.5, fresh=0.3)  # isp1's answer is too old
    tracker.tick(0.7)  # both down
    tracker.reply("isp1", 0.8)
    assert tracker.others_answer("isp2", 0.8, fresh=0.3)
    assert not tracker.others_answer("isp1", 0.8, fresh=0.3)  # isp2 is down


@pytest.mark.parametrize("version", [4, 6])
def test_echo_request_and_reply(version):
    request = icmp.echo_request(version, 0x1234, 7)
    if version == 4:
        assert icmp.checksum(request) == 0
        reply = bytes([0x45]) + bytes(19) + bytes([0]) + request[1:]
    else:
        reply = bytes([129]) + request[1:]
    assert icmp.parse_echo_reply(version, reply) == (0x1234, 7)
    assert (
        icmp.parse_echo_reply(version, request if version == 6 else bytes([0x45]) + bytes(19) + request)
        is None
    )


def _rtattr(kind, value):
    length = 4 + len(value)
    return struct.pack("=HH", length, kind) + value + bytes((4 - length % 4) % 4)


def test_link_and_address_notifications_are_parsed():
    body = netlink_events.IFINFOMSG.pack(0, 1, 3, netlink_events.IFF_UP, 0) + _rtattr(3, b"nic2\0")
    link = netlink_events.NLMSG_HDR.pack(16 + len(body), netlink_events.RTM_NEWLINK, 0, 0, 0) + body
    addr_body = netlink_events.IFADDRMSG.pack(socket.AF_INET6, 64, 0, 0, 3)
    addr = netlink_events.NLMSG_HDR.pack(16 + len(addr_body), netlink_events.RTM_DELADDR, 0, 0, 0) + addr_body
    events = netlink_events.parse(link + addr)
    assert events[0] == netlink_events.LinkEvent(3, "nic2", carrier=False, removed=False)
    assert events[1] == netlink_events.AddressEvent(3, socket.AF_INET6, removed=True)


def test_config_defaults_endpoint_addresses_to_probe_sources_and_refuses_mixed_families():
    parsed = config.from_dict(
        {
            "providers": [
                {"name": "isp1", "probes": [{"source": "2001:2:0:103::a/64", "target": "2001:2:0:102::a"}]}
            ]
        }
    )
    assert parsed.providers["isp1"].addresses == {"2001:2:0:103::a"}
    with pytest.raises(config.ConfigError):
        config.from_dict(
            {
                "providers": [
                    {"name": "isp1", "probes": [{"source": "198.18.19.10", "target": "2001:2:0:102::a"}]}
                ]
            }
        )
    with pytest.raises(config.ConfigError):
        config.from_dict(
            {
                "interval": 1,
                "down_after": 0.5,
                "providers": [
                    {"name": "isp1", "probes": [{"source": "198.18.19.10", "target": "198.18.18.10"}]}
                ],
            }
        )


def test_mptcp_subflow_events_are_parsed():
    from mpstream.paths.pathwatch import mptcp_events

    attrs = (
        _rtattr(mptcp_events.ATTR_TOKEN, struct.pack("=I", 0xBEEF))
        + _rtattr(mptcp_events.ATTR_SADDR6, socket.inet_pton(socket.AF_INET6, "2001:2:0:203::a"))
        + _rtattr(mptcp_events.ATTR_DADDR6, socket.inet_pton(socket.AF_INET6, "2001:2:0:202::a"))
        + _rtattr(mptcp_events.ATTR_SPORT, struct.pack("!H", 40000))
        + _rtattr(mptcp_events.ATTR_DPORT, struct.pack("!H", 1935))
        + _rtattr(mptcp_events.ATTR_ERROR, bytes([110]))
    )
    body = mptcp_events.GENL_HDR.pack(11, 1, 0) + attrs
    datagram = mptcp_events.NLMSG_HDR.pack(16 + len(body), 0x1F, 0, 0, 0) + body
    (event,) = mptcp_events.parse(datagram, family_id=0x1F)
    assert event == mptcp_events.MptcpEvent(
        "sub_closed", 0xBEEF, "2001:2:0:203::a", "2001:2:0:202::a", 40000, 1935, 110
    )
    assert "sub_closed" in event.describe() and "(error 110)" in event.describe()
    assert mptcp_events.parse(datagram, family_id=0x20) == []  # another family's message


CLONE_NEWNET = 0x40000000


def in_own_network_namespace(body):
    """`body()` run in a thread of a network namespace of its own (loopback only, up), so that
    its sockets are the only ones there; the namespace goes with the thread and its sockets."""
    import ctypes
    import threading

    from pyroute2 import IPRoute

    outcome = {}

    def run():
        try:
            if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET) != 0:
                outcome["skip"] = f"no network namespace of its own: errno {ctypes.get_errno()}"
                return
            with IPRoute() as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            outcome["value"] = body()
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "skip" in outcome:
        pytest.skip(outcome["skip"])
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _listener(family, address):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((address, 0))
    server.listen()
    return server


def _mptcp_listener(family, address):
    """A listening MPTCP socket on `address`, or the OSError of a kernel without MPTCP sockets."""
    try:
        server = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_MPTCP)
    except OSError as exc:
        return exc
    server.bind((address, 0))
    server.listen()
    return server


def _connect(family, source, server, proto=0):
    client = socket.socket(family, socket.SOCK_STREAM, proto)
    client.bind((source, 0))
    client.connect(server.getsockname()[:2])
    accepted, _ = server.accept()
    return client, accepted


def test_addresses_in_use_are_those_of_established_tcp_sockets_of_both_families_listeners_not():
    from mpstream.paths.pathwatch import sockets

    def body():
        seen = {}
        with _listener(socket.AF_INET, "127.0.0.1") as v4, _listener(socket.AF_INET6, "::1") as v6:
            seen["listening"] = sockets.established_pairs()
            client, accepted = _connect(socket.AF_INET, "127.0.0.2", v4)
            client6, accepted6 = _connect(socket.AF_INET6, "::1", v6)
            with client, accepted, client6, accepted6:
                seen["connected"] = sockets.established_pairs()
                seen["in_use"] = sockets.local_addresses_in_use()
                seen["only_from_2"] = sockets.peers_reached_only_from({"127.0.0.2"})
                seen["only_from_1"] = sockets.peers_reached_only_from({"127.0.0.1"})
            seen["closed"] = sockets.established_pairs()  # FIN_WAIT, CLOSE_WAIT or TIME_WAIT now
        return seen

    seen = in_own_network_namespace(body)
    assert seen["listening"] == set()
    # Both ends of each connection are established sockets of this namespace.
    assert seen["connected"] == {("127.0.0.2", "127.0.0.1"), ("127.0.0.1", "127.0.0.2"), ("::1", "::1")}
    assert seen["in_use"] == {"127.0.0.1", "127.0.0.2", "::1"}
    assert seen["only_from_2"] == {"127.0.0.1"} and seen["only_from_1"] == {"127.0.0.2"}
    assert seen["closed"] == set()


def test_a_dual_stack_sockets_ipv4_addresses_count_as_ipv4():
    from mpstream.paths.pathwatch import sockets, subflows

    def body():
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as server:
            server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            server.bind(("::", 0))
            server.listen()
            port = server.getsockname()[1]
            with socket.create_connection(("127.0.0.3", port), source_address=("127.0.0.4", 0)):
                accepted, _ = server.accept()
                with accepted:
                    diag = subflows.SockDiag()
                    try:
                        return sockets.established_pairs(diag), {s.local for s in diag.established()}
                    finally:
                        diag.close()

    pairs, raw = in_own_network_namespace(body)
    assert "::ffff:127.0.0.3" in raw  # the accepted socket is an IPv6 one, in the IPv6 dump
    assert pairs == {("127.0.0.4", "127.0.0.3"), ("127.0.0.3", "127.0.0.4")}
    assert sockets.unmapped("::ffff:198.18.19.10") == "198.18.19.10"
    assert sockets.unmapped("2001:2:0:103::a") == "2001:2:0:103::a"


def test_the_one_dump_tells_mptcp_subflows_from_plain_tcp():
    from mpstream.paths.pathwatch import subflows

    if not hasattr(socket, "IPPROTO_MPTCP"):
        pytest.skip("no IPPROTO_MPTCP in this Python")

    def body():
        with _listener(socket.AF_INET, "127.0.0.1") as plain:
            mptcp = _mptcp_listener(socket.AF_INET, "127.0.0.1")
            if isinstance(mptcp, OSError):
                return mptcp
            with mptcp:
                tcp_pair = _connect(socket.AF_INET, "127.0.0.5", plain)
                mptcp_pair = _connect(socket.AF_INET, "127.0.0.6", mptcp, socket.IPPROTO_MPTCP)
                with tcp_pair[0], tcp_pair[1], mptcp_pair[0], mptcp_pair[1]:
                    diag = subflows.SockDiag()
                    try:
                        return diag.established(), diag.subflows()
                    finally:
                        diag.close()

    found = in_own_network_namespace(body)
    if isinstance(found, OSError):
        pytest.skip(f"no MPTCP sockets here: {found}")
    established, found_subflows = found
    assert {s.local for s in established} == {"127.0.0.1", "127.0.0.5", "127.0.0.6"}
    # The MPTCP connection's two ends are subflows (one token each); the plain one is not.
    assert sorted((s.local, s.remote) for s in found_subflows) == [("127.0.0.1", "127.0.0.6"),
                                                                   ("127.0.0.6", "127.0.0.1")]
    assert all(isinstance(s, subflows.Subflow) and s.token for s in found_subflows)
    assert {(s.local, s.local_port) for s in found_subflows} <= {(s.local, s.local_port) for s in established}


def test_a_subflow_is_aborted_by_its_exact_identity_and_a_gone_one_is_an_error():
    import errno

    from mpstream.paths.pathwatch import subflows

    if not hasattr(socket, "IPPROTO_MPTCP"):
        pytest.skip("no IPPROTO_MPTCP in this Python")

    def body():
        server = _mptcp_listener(socket.AF_INET6, "::1")
        if isinstance(server, OSError):
            return server
        with server:
            client, accepted = _connect(socket.AF_INET6, "::1", server, socket.IPPROTO_MPTCP)
            with client, accepted:
                diag = subflows.SockDiag()
                try:
                    before = diag.subflows()
                    (client_side,) = [s for s in before if s.local_port == client.getsockname()[1]]
                    diag.abort(client_side)
                    after = diag.subflows()
                    try:
                        diag.abort(client_side)
                        again = None
                    except OSError as exc:
                        again = exc.errno
                    return before, client_side, after, again
                finally:
                    diag.close()

    found = in_own_network_namespace(body)
    if isinstance(found, OSError):
        pytest.skip(f"no MPTCP sockets here: {found}")
    before, client_side, after, again = found
    assert len(before) == 2 and client_side.family == socket.AF_INET6
    assert client_side not in after  # gone (and its connection with it: it was the only subflow)
    assert again == errno.ENOENT


def test_token_and_peer_address_id_are_read_from_mptcp_ulp_attributes_only():
    from mpstream.paths.pathwatch import subflows

    # INET_DIAG_ULP_INFO of a client's first subflow as 6.18 sends it (`ss -ti`:
    # tcp-ulp-mptcp token:0000(id:0)/bf5e3fa6(id:0)).
    ulp = bytes.fromhex(
        "0a000100 6d707463 70000000"  # INET_ULP_INFO_NAME "mptcp"
        "58000300"  # INET_ULP_INFO_MPTCP, nested:
        "08000100 00000000 08000200 a63f5ebf"  # TOKEN_REM, TOKEN_LOC
        "08000800 c3000000 05000900 00000000 05000a00 00000000 08000300 b9880000"
        "0c000400 02ea53a6 7b057fa6 08000500 01000000 08000600 3331cf76 06000700 00000000"
    )
    assert subflows.mptcp_ulp(ulp) == (0xBF5E3FA6, 0, 0)
    other_ulp = _rtattr(subflows.INET_ULP_INFO_NAME, b"tls\0")
    assert subflows.mptcp_ulp(other_ulp) is None
    assert subflows.mptcp_ulp(b"") is None


SERVER_ISP1, SERVER_ISP2 = "2001:2:0:102::a", "2001:2:0:202::a"
CLIENT_ISP1, CLIENT_ISP2, CLIENT_V4 = "2001:2:0:103::a", "2001:2:0:203::a", "::ffff:198.18.19.10"


def _subflow(local, token, port, remote=SERVER_ISP1):
    """A client's subflow; the connection began from its isp1 address towards the server's."""
    from mpstream.paths.pathwatch.subflows import Subflow

    local_id = 0 if local == CLIENT_ISP1 else 2
    remote_id = 0 if remote == SERVER_ISP1 else 2
    return Subflow(socket.AF_INET6, local, port, remote, 1935, 0, port, token, local_id, remote_id)


def test_only_subflows_of_connections_that_keep_a_working_path_are_aborted():
    from mpstream.paths.pathwatch import subflows

    both = [_subflow(CLIENT_ISP1, 1, 40001), _subflow(CLIENT_ISP2, 1, 40002), _subflow(CLIENT_ISP1, 1, 40003)]
    alone = [_subflow(CLIENT_ISP1, 2, 40004)]  # a connection on the failed provider only
    third_down = [_subflow(CLIENT_ISP1, 3, 40005), _subflow(CLIENT_V4, 3, 40006)]
    chosen, kept = subflows.abortable(both + alone + third_down, {CLIENT_ISP1}, {CLIENT_ISP1, "198.18.19.10"})
    assert [s.local_port for s in chosen] == [40001, 40003]
    assert [s.local_port for s in kept] == [40004, 40005]
    # An IPv4-mapped local address counts as the IPv4 one.
    chosen, _ = subflows.abortable(third_down, {"198.18.19.10"}, {"198.18.19.10"})
    assert [s.local_port for s in chosen] == [40006]


def test_the_only_subflow_towards_a_peer_address_is_kept_unless_it_joins_the_initial_ones():
    from mpstream.paths.pathwatch import subflows

    # isp2 failed; no path crosses providers: only its subflow reaches the server's isp2 address.
    alone = [_subflow(CLIENT_ISP1, 1, 40001), _subflow(CLIENT_ISP2, 1, 40002, SERVER_ISP2)]
    assert subflows.abortable(alone, {CLIENT_ISP2}, {CLIENT_ISP2}) == ([], [alone[1]])
    # Another working subflow reaches that address: this one may go.
    crossing = [*alone, _subflow(CLIENT_ISP1, 1, 40003, SERVER_ISP2)]
    assert subflows.abortable(crossing, {CLIENT_ISP2}, {CLIENT_ISP2}) == ([crossing[1]], [])
    # The subflow between the initial addresses (IDs 0 both) goes: both ends keep knowing them.
    first = [_subflow(CLIENT_ISP1, 2, 40004), _subflow(CLIENT_ISP2, 2, 40005, SERVER_ISP2)]
    assert subflows.abortable(first, {CLIENT_ISP1}, {CLIENT_ISP1}) == ([first[0]], [])


def test_a_subflow_whose_peer_address_is_on_the_failed_provider_goes_over_it_too():
    from mpstream.paths.pathwatch import subflows

    # Paths cross providers and isp1 failed everywhere: the client's isp2 subflows towards
    # the server's isp1 address are as dead as its isp1 ones.
    isp1 = {CLIENT_ISP1, SERVER_ISP1}
    towards_initial = [_subflow(CLIENT_ISP2, 1, 40001), _subflow(CLIENT_ISP2, 1, 40002, SERVER_ISP2)]
    assert subflows.abortable(towards_initial, isp1, isp1) == ([towards_initial[0]], [])
    # Its endpoints withdrawn, only the peers' isp1 addresses are asked for: the same one goes.
    assert subflows.abortable(towards_initial, {SERVER_ISP1}, isp1) == ([towards_initial[0]], [])
    # isp2 failed instead: the only subflow towards the server's announced isp2 address
    # stays (that address would be lost), though it leaves from the working isp1 address.
    isp2 = {CLIENT_ISP2, SERVER_ISP2}
    towards_announced = [_subflow(CLIENT_ISP1, 2, 40003), _subflow(CLIENT_ISP1, 2, 40004, SERVER_ISP2)]
    assert subflows.abortable(towards_announced, isp2, isp2) == ([], [towards_announced[1]])


def test_abort_is_on_by_default_and_the_command_line_turns_it_off():
    import argparse

    from mpstream.paths.pathwatch import command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    probe = "--probe=isp1,198.18.19.10,198.18.18.10"
    assert command.build_config(parser.parse_args([probe])).abort is True
    assert command.build_config(parser.parse_args([probe, "--no-abort"])).abort is False


def test_a_subflows_tcp_info_tells_when_its_peer_was_last_heard():
    import time

    from mpstream.paths.pathwatch import subflows

    if not hasattr(socket, "IPPROTO_MPTCP"):
        pytest.skip("no IPPROTO_MPTCP in this Python")

    def body():
        server = _mptcp_listener(socket.AF_INET, "127.0.0.1")
        if isinstance(server, OSError):
            return server
        with server:
            client, accepted = _connect(socket.AF_INET, "127.0.0.7", server, socket.IPPROTO_MPTCP)
            with client, accepted:
                diag = subflows.SockDiag()
                try:
                    client.sendall(b"x" * 1000)
                    accepted.recv(1000)
                    time.sleep(0.05)
                    fresh = {s.local: s for s in diag.subflows()}
                    time.sleep(0.4)  # nothing sent either way
                    quiet = {s.local: s for s in diag.subflows()}
                    return fresh, quiet
                finally:
                    diag.close()

    found = in_own_network_namespace(body)
    if isinstance(found, OSError):
        pytest.skip(f"no MPTCP sockets here: {found}")
    fresh, quiet = found
    # The server's side received the data (and the client's its ACK) within the last 0.25 s.
    assert fresh["127.0.0.1"].heard_ms < 250 and fresh["127.0.0.7"].heard_ms < 250
    assert quiet["127.0.0.1"].heard_ms >= 400 and quiet["127.0.0.7"].heard_ms >= 400
    assert all(s.retransmits == 0 for s in (*fresh.values(), *quiet.values()))
    assert subflows.tcp_state(None) == (0, None) and subflows.tcp_state(b"\0" * 8) == (0, None)


def _heard(subflow, heard_ms, retransmits=0):
    import dataclasses

    return dataclasses.replace(subflow, heard_ms=heard_ms, retransmits=retransmits)


def test_a_returned_providers_connections_are_served_by_working_subflows_over_it():
    from mpstream.paths.pathwatch import subflows

    isp2 = {CLIENT_ISP2}
    before = [_subflow(CLIENT_ISP1, 1, 40001), _subflow(CLIENT_ISP2, 1, 40002),
              _subflow(CLIENT_ISP1, 2, 40003)]  # connection 2 never used isp2
    failure = subflows.failure_seen(before, isp2, seen=100.0)
    assert failure.connections == {1, 2} and failure.over_provider == {1}
    # Listed after the abort: a connection whose subflows over it were aborted used it too.
    assert subflows.failure_seen(before[2:], isp2, 100.0, cut={4}).over_provider == {4}
    now = 101.0  # 1000 ms after the failure was seen
    # A false alarm: the isp2 subflow carried on, heard 20 ms ago.
    assert subflows.unserved([before[0], _heard(before[1], 20), before[2]], isp2, failure, now) == set()
    # A real outage: nothing heard over it since the failure, or backed off after.
    assert subflows.unserved([before[0], _heard(before[1], 1500), before[2]], isp2, failure, now) == {1}
    assert subflows.unserved([before[0], _heard(before[1], 20, retransmits=2)], isp2, failure, now) == {1}
    assert subflows.unserved([before[0], before[1]], isp2, failure, now) == {1}  # no tcp_info
    # Re-joined by the peer over the returned provider (a new subflow), its old one gone.
    rejoined = [before[0], _heard(_subflow(CLIENT_ISP2, 1, 40009), 5), before[2]]
    assert subflows.unserved(rejoined, isp2, failure, now) == set()
    # A connection that began during the outage needs the provider too.
    newcomer = [*rejoined, _subflow(CLIENT_ISP1, 3, 40010)]
    assert subflows.unserved(newcomer, isp2, failure, now) == {3}
