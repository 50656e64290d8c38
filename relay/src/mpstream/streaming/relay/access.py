"""Who may publish or play: per-application keys and CIDR allow/deny lists."""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import parse_qs

from mpstream.streaming.relay.config import AppPolicy, RelayConfig


def client_ip(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address in "[v6]:port" / "v4:port" (IPv4-mapped IPv6 counts as IPv4)."""
    host = peer.rpartition(":")[0].strip("[]")
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _listed(address, networks) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def _address_allowed(address, allow, deny) -> bool:
    if address is None:
        return not allow  # unknown peer address: only where nothing is restricted
    if _listed(address, deny):
        return False
    return not allow or _listed(address, allow)


def check_connect(config: RelayConfig, app: str) -> str | None:
    """None when the app is served, else the reason it is not."""
    return None if config.policy(app) is not None else f"application {app!r} is not served here"


def check_publish(config: RelayConfig, app: str, stream: str, query: str, peer: str) -> str | None:
    """None when `peer` may publish app/stream with this query string, else the reason."""
    policy: AppPolicy | None = config.policy(app)
    if policy is None:
        return f"application {app!r} is not served here"
    if not stream:
        return "empty stream name"
    if not _address_allowed(client_ip(peer), policy.publish_allow, policy.publish_deny):
        return f"publishing from {peer} is not allowed"
    expected = policy.stream_keys.get(stream, policy.publish_key)
    if expected is not None:
        given = parse_qs(query).get("key", [""])[0]
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return "wrong or missing publish key"
    return None


def publish_key_required(config: RelayConfig, app: str, stream: str) -> bool:
    """Whether publishing app/stream needs a key (then a publisher that passed `check_publish` holds it)."""
    policy = config.policy(app)
    return policy is not None and policy.stream_keys.get(stream, policy.publish_key) is not None


def check_play(config: RelayConfig, app: str, stream: str, peer: str) -> str | None:
    policy = config.policy(app)
    if policy is None:
        return f"application {app!r} is not served here"
    if not stream:
        return "empty stream name"
    if not _address_allowed(client_ip(peer), policy.play_allow, policy.play_deny):
        return f"playing from {peer} is not allowed"
    return None
