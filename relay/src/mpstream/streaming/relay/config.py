"""The relay's settings: defaults, a TOML file, and command-line flags on top.

Example file (every key optional):

    listen = ["[::]:1935"]            # repeatable; names, IPv4 and IPv6 literals
    http = "localhost:8935"           # stats API (JSON at /, Prometheus at /metrics); "" = off
    mptcp = "auto"                    # auto | on | off
    chunk_size = 4096                 # our outgoing chunk size
    gop_cache = true                  # late joiners start at the latest keyframe
    on_busy = "refuse"                # a second publisher on a busy stream: refuse | replace
    stale_publisher_s = 5             # ...but one with the stream's publish key replaces a publisher
                                      # silent this long (a reconnecting encoder); without a key a
                                      # silent publisher keeps its name while its connection lives
    flush_interval_ms = 50            # a publisher is read (and its media sent on) at most this often:
                                      # one write per player per interval; a message waits up to it
    max_player_lag_ms = 10000         # a player further behind skips to the next keyframe
    disconnect_after_ms = 30000       # a player behind (or taking nothing we write) this long is disconnected
    ack_window_bytes = 262144         # the peer acknowledges what it received every this many bytes
    max_unacknowledged_windows = 4    # a player more windows than this behind in its acknowledgements
                                      # for disconnect_after_ms is disconnected (it does not read)
    max_connections = 1000            # lowered to what the open-files limit allows, with a warning
    handshake_timeout_s = 5           # handshake + connect must be done by then
    idle_timeout_s = 30               # a connection that neither publishes nor plays
    max_gop_bytes = 8388608           # GOP cache of one stream (beyond it late joiners wait)

    # Budgets against hostile peers (0 switches a rate off):
    max_messages_per_s = 2000         # messages parsed per connection and second (empty ones count)
    message_burst = 5000              # ...and at once; beyond it reading from the peer pauses
    max_throttled_s = 3               # a peer held back by its message budget this long is dropped
    max_output_bytes = 16777216       # queued for one peer (media and control); beyond it: dropped
    max_connection_bytes = 33554432   # what one connection alone holds: partial input, control answers
                                      # and transport buffer for it, the caches of streams it publishes
    max_total_bytes = 268435456       # all connections together; beyond it the greediest is dropped
    log_lines_per_s = 50              # log lines per second (bursts of 10x); the rest are counted

    # Edge mode (see docs/edge-relays.md): a stream played here that nobody publishes here is
    # pulled from the first origin that serves it, over MPTCP; the next one takes over when it fails.
    origins = ["rtmp://origin1/live", "rtmp://origin2/live"]  # all apps; per app: [apps.NAME] origins
    pull_linger_s = 10                # the pull ends this long after its last player left
    origin_silence_s = 0.8            # no media from the origin this long: it has failed, the next one is tried
    origin_connect_timeout_s = 3      # connect, handshake and play started within this, or the next one
    origin_retry_s = 1                # pause after every origin has failed once, before trying them again

    [limits]                          # per connection, see mpstream.streaming.rtmp.Limits
    max_message_size = 8388608
    min_chunk_size = 64
    max_chunk_size = 1048576
    max_chunk_streams = 64
    max_buffered_bytes = 12582912     # unfinished messages of one connection together
    max_aggregate_messages = 256      # sub-messages in one aggregate message
    max_name_length = 256             # app and stream names

    [apps.live]                       # per application; [apps."*"] applies to all others
    publish_key = "secret"            # publishers append ?key=secret to the stream name
    stream_keys = { cam1 = "other" }  # per stream, instead of publish_key
    publish_allow = ["::1/128", "127.0.0.0/8", "2001:2::/48"]
    publish_deny = []
    play_allow = []                   # empty: everyone
    play_deny = ["198.18.99.0/24"]
    origins = []                      # this app's origins (empty: the top-level ones)

When `[apps]` is present, applications it does not name (and no "*") are refused. An
application sent with segments ("live/x", what ffmpeg makes of rtmp://host/live/x/cam)
takes the policy of "live/x" if named, else of its first segment "live", else of "*".
Deny and allow entries written as IPv4-mapped IPv6 (::ffff:198.51.100.0/120) match IPv4 peers.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mpstream.streaming.rtmp.limits import Limits
from mpstream.streaming.rtmp.url import parse_rtmp_url

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A setting that cannot be used."""


def _networks(values: Any, where: str) -> tuple[Network, ...]:
    if not isinstance(values, list):
        raise ConfigError(f"{where} must be a list of CIDR prefixes")
    try:
        return tuple(_unmapped(ipaddress.ip_network(str(v), strict=False)) for v in values)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _origins(values: Any, where: str) -> tuple[str, ...]:
    """rtmp://HOST[:PORT][/APP] URLs (a stream name is the player's, added per pull)."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"{where} must be a list of rtmp:// URLs")
    for value in values:
        try:
            url = parse_rtmp_url(str(value))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if url.stream:
            raise ConfigError(f"{where}: {value!r} names a stream; give rtmp://HOST[:PORT]/APP")
    return tuple(str(v) for v in values)


_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _unmapped(network: Network) -> Network:
    """::ffff:a.b.c.d/n as a.b.c.d/(n-96): peers are compared as IPv4 (see access.client_ip)."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96 and network.subnet_of(_V4_MAPPED):
        return ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
    return network


@dataclass(frozen=True)
class AppPolicy:
    """Who may publish and play in one application."""

    publish_key: str | None = None
    stream_keys: dict[str, str] = field(default_factory=dict)
    publish_allow: tuple[Network, ...] = ()
    publish_deny: tuple[Network, ...] = ()
    play_allow: tuple[Network, ...] = ()
    play_deny: tuple[Network, ...] = ()
    origins: tuple[str, ...] = ()  # pull from these when nobody publishes here (edge mode)

    @classmethod
    def from_table(cls, name: str, table: dict) -> AppPolicy:
        known = {f.name for f in fields(cls)}
        unknown = set(table) - known
        if unknown:
            raise ConfigError(f"apps.{name}: unknown keys {sorted(unknown)}")
        keys = table.get("stream_keys", {})
        if not isinstance(keys, dict):
            raise ConfigError(f"apps.{name}.stream_keys must be a table")
        key = table.get("publish_key")
        return cls(
            publish_key=str(key) if key is not None else None,
            origins=_origins(table.get("origins", []), f"apps.{name}.origins"),
            stream_keys={str(k): str(v) for k, v in keys.items()},
            **{k: _networks(table.get(k, []), f"apps.{name}.{k}")
               for k in ("publish_allow", "publish_deny", "play_allow", "play_deny")},
        )


@dataclass(frozen=True)
class RelayConfig:
    listen: tuple[str, ...] = ("[::]:1935",)
    http: str = "localhost:8935"
    mptcp: str = "auto"
    chunk_size: int = 4096
    gop_cache: bool = True
    on_busy: str = "refuse"
    stale_publisher_s: float = 5.0  # a silent publisher (half-open after an outage) does not block its name
    flush_interval_ms: float = 50.0
    # Generous on purpose: an MPTCP path failover can stall a connection for several seconds
    # (8-13 s measured here), and the player should get the backlog, not a gap, afterwards.
    max_player_lag_ms: float = 10000.0
    disconnect_after_ms: float = 30000.0
    # The Window Acknowledgement Size we announce (ffmpeg acknowledges every half window). Small, so
    # that a player that does not read shows within seconds instead of once the kernel's socket
    # buffers (megabytes) are full; an acknowledgement costs the player 16 bytes, about one a second
    # at 1 Mbit/s.
    ack_window_bytes: int = 256 * 1024
    # One that reads stays within about one window plus what is in flight (4 windows, 1 MiB, are
    # 28 Mbit/s over a 300 ms round trip); a failover stall (8-13 s here) passes before the timeout.
    max_unacknowledged_windows: int = 4
    max_connections: int = 1000
    handshake_timeout_s: float = 5.0
    idle_timeout_s: float = 30.0
    max_gop_bytes: int = 8 << 20
    max_messages_per_s: float = 2000.0
    message_burst: float = 5000.0
    max_throttled_s: float = 3.0
    max_output_bytes: int = 16 << 20
    max_connection_bytes: int = 32 << 20
    max_total_bytes: int = 256 << 20
    log_lines_per_s: float = 50.0
    origins: tuple[str, ...] = ()  # edge mode for every app without origins of its own
    pull_linger_s: float = 10.0
    # Below a 1 s viewer buffer: a silent origin (its node cut off) is left before viewers run dry;
    # a needless switch (an MPTCP path failover stalling 0.3-0.6 s) costs them little (mpstream.streaming.edge.splice).
    origin_silence_s: float = 0.8
    origin_connect_timeout_s: float = 3.0
    origin_retry_s: float = 1.0
    limits: Limits = field(default_factory=Limits)
    apps: dict[str, AppPolicy] | None = None  # None: every app, no restrictions

    def __post_init__(self) -> None:
        if self.mptcp not in ("auto", "on", "off"):
            raise ConfigError("mptcp must be auto, on or off")
        if self.on_busy not in ("refuse", "replace"):
            raise ConfigError("on_busy must be refuse or replace")
        if not 128 <= self.chunk_size <= 0xFFFFFF:
            raise ConfigError("chunk_size must be within 128..16777215")
        if not self.listen:
            raise ConfigError("need at least one listen address")
        for name in ("flush_interval_ms", "max_player_lag_ms", "disconnect_after_ms", "handshake_timeout_s",
                     "idle_timeout_s", "stale_publisher_s", "max_messages_per_s", "max_throttled_s",
                     "log_lines_per_s", "pull_linger_s", "origin_retry_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        for name in ("origin_silence_s", "origin_connect_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be above 0")
        _origins(list(self.origins), "origins")
        if not 4096 <= self.ack_window_bytes <= 0x7FFFFFFF:
            raise ConfigError("ack_window_bytes must be within 4096..2147483647")
        if self.max_unacknowledged_windows < 1:
            raise ConfigError("max_unacknowledged_windows must be at least 1")
        if self.max_connections < 1:
            raise ConfigError("max_connections must be at least 1")
        if self.max_messages_per_s and self.message_burst < 1:
            raise ConfigError("message_burst must be at least 1")
        for name in ("max_gop_bytes", "max_output_bytes", "max_connection_bytes", "max_total_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.max_total_bytes < self.max_connection_bytes:
            raise ConfigError("max_total_bytes must be at least max_connection_bytes")
        if self.max_output_bytes <= self.max_gop_bytes:
            raise ConfigError("max_output_bytes must be above max_gop_bytes (a late joiner gets the GOP cache at once)")

    def policy(self, app: str) -> AppPolicy | None:
        """The policy of `app`, or None when the app is not served."""
        if self.apps is None:
            return AppPolicy()
        return self.apps.get(app) or self.apps.get(app.partition("/")[0]) or self.apps.get("*")

    def origins_for(self, app: str) -> tuple[str, ...]:
        """Where streams of `app` are pulled from when nobody publishes them here (empty: not an edge)."""
        policy = self.policy(app)
        return (policy.origins if policy is not None and policy.origins else ()) or self.origins


_SCALARS = {f.name for f in fields(RelayConfig)} - {"limits", "apps", "listen", "origins"}


def from_mapping(data: dict, base: RelayConfig | None = None) -> RelayConfig:
    """A config from a parsed TOML document (unknown keys are errors: typos should not pass silently)."""
    base = base or RelayConfig()
    unknown = set(data) - _SCALARS - {"limits", "apps", "listen", "origins"}
    if unknown:
        raise ConfigError(f"unknown settings {sorted(unknown)}")
    changes: dict[str, Any] = {k: data[k] for k in _SCALARS if k in data}
    if "listen" in data:
        listen = data["listen"]
        changes["listen"] = tuple([listen] if isinstance(listen, str) else listen)
    if "origins" in data:
        changes["origins"] = _origins(data["origins"], "origins")
    if "limits" in data:
        try:
            changes["limits"] = replace(base.limits, **data["limits"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"limits: {exc}") from None
    if "apps" in data:
        changes["apps"] = {name: AppPolicy.from_table(name, table or {}) for name, table in data["apps"].items()}
    try:
        return replace(base, **changes)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def load(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RelayConfig:
    """Defaults, then the TOML file (if any), then `overrides` (flags that were given)."""
    config = RelayConfig()
    if path:
        try:
            with open(path, "rb") as handle:
                config = from_mapping(tomllib.load(handle), config)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if given:
        config = from_mapping(given, config)
    return config
