"""Address parsing, resolution and MPTCP/TCP sockets over loopback (IPv6 and IPv4)."""

import asyncio
import logging
import socket

import pytest
from mpstream.streaming import net


@pytest.mark.parametrize("text, expected", [
    ("[::]:1935", ("::", 1935)), ("[2001:db8::1]:19", ("2001:db8::1", 19)), ("[::1]", ("::1", 1935)),
    ("::1", ("::1", 1935)), ("2001:db8::5", ("2001:db8::5", 1935)), ("127.0.0.1:80", ("127.0.0.1", 80)),
    ("localhost", ("localhost", 1935)), ("example.test:1936", ("example.test", 1936)),
])
def test_parse_hostport(text, expected):
    assert net.parse_hostport(text) == expected


@pytest.mark.parametrize("text", ["[::1", "[::1]x", ":80", "host:99999", "host:abc", ""])
def test_parse_hostport_rejects(text):
    with pytest.raises(ValueError):
        net.parse_hostport(text)


def test_parse_target_accepts_urls():
    assert net.parse_target("rtmp://[2001:db8::2]:1940/live/x?k=1") == ("2001:db8::2", 1940)
    assert net.parse_target("rtmp://relay.test/live/x") == ("relay.test", 1935)


def test_format_sockaddr_uses_brackets_for_ipv6_and_unmaps_ipv4():
    assert net.format_sockaddr(("::1", 5, 0, 0)) == "[::1]:5"
    assert net.format_sockaddr(("::ffff:127.0.0.1", 5, 0, 0)) == "127.0.0.1:5"
    assert net.format_sockaddr(("192.0.2.1", 7)) == "192.0.2.1:7"


def test_resolve_returns_both_families_for_a_passive_wildcard():
    families = {family for family, _ in net.resolve("", 1935, passive=True)}
    assert socket.AF_INET6 in families or socket.AF_INET in families
    assert net.resolve("::1", 1)[0][0] == socket.AF_INET6


def test_bad_mode_is_refused():
    with pytest.raises(ValueError):
        net.create_socket(socket.AF_INET6, "maybe")


PATHS: list = []


async def _echo_roundtrip(listen, targets, mptcp_server, mptcp_client):
    seen = []
    PATHS.clear()

    async def handle(reader, writer):
        seen.append(net.transport_info(writer))
        PATHS.append(net.mptcp_subflow_addresses(writer))
        writer.write(await reader.readexactly(5))
        await writer.drain()
        writer.close()

    servers = await net.start_server(handle, listen, mptcp=mptcp_server)
    port = servers[0].sockets[0].getsockname()[1]
    results = []
    try:
        for host in targets:
            reader, writer = await net.open_connection(net.format_hostport(host, port), mptcp=mptcp_client)
            writer.write(b"hello")
            results.append((await reader.readexactly(5), net.transport_info(writer)))
            writer.close()
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
    return results, seen


@pytest.mark.timeout(30)
def test_dual_stack_listener_serves_ipv6_and_ipv4_over_mptcp():
    if not net.mptcp_available():
        pytest.skip("kernel without MPTCP")
    results, seen = asyncio.run(_echo_roundtrip("[::]:0", ["::1", "127.0.0.1"], "auto", "on"))
    assert [r[0] for r in results] == [b"hello", b"hello"]
    assert all(info["mptcp"] and info["subflows"] >= 1 for _, info in results)
    assert seen[0]["peer"].startswith("[::1]:") and seen[1]["peer"].startswith("127.0.0.1:")
    assert all(info["mptcp"] for info in seen)
    assert [paths for paths in PATHS] == [[(seen[0]["local"], seen[0]["peer"])],
                                          [(seen[1]["local"], seen[1]["peer"])]]


@pytest.mark.timeout(30)
def test_tcp_client_on_mptcp_listener_is_reported_as_tcp(caplog):
    caplog.set_level(logging.INFO)
    results, seen = asyncio.run(_echo_roundtrip("[::1]:0", ["::1"], "auto", "off"))
    assert results[0][0] == b"hello"
    assert results[0][1]["mptcp"] is False and results[0][1]["subflows"] == 1
    assert seen[0]["mptcp"] is False  # the MPTCP listener fell back to TCP for this peer
    assert PATHS == [[]]


@pytest.mark.timeout(30)
def test_connect_failure_names_every_address_tried():
    listener = socket.socket(socket.AF_INET6)
    listener.bind(("::1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nobody listens there now
    with pytest.raises(OSError, match=r"\[::1\]"):
        asyncio.run(net.open_connection(f"[::1]:{port}", timeout=5))
