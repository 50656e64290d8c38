"""What the watcher watches: providers, their probes, devices and endpoint addresses."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Probe:
    provider: str
    source: str
    target: str
    peer: str = ""  # the node the target belongs to (its addresses count as one peer); default the target

    def __post_init__(self) -> None:
        if not self.peer:
            object.__setattr__(self, "peer", self.target)

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.source).version


@dataclass
class Provider:
    name: str
    probes: list[Probe] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    addresses: set[str] = field(default_factory=set)  # endpoints to re-create; default: probe sources

    @property
    def peer_addresses(self) -> set[str]:
        """The other nodes' addresses on this provider (the probes' targets)."""
        return {probe.target for probe in self.probes}


@dataclass
class Config:
    providers: dict[str, Provider]
    interval: float = 0.2
    down_after: float = 0.6
    recreate: bool = True
    # Seconds a provider back alone waits for another one to answer before it is left to
    # the retransmission timers; 0: decide as soon as it has settled.
    give_up: float = 0.0
    # Abort a failed provider's MPTCP subflows (while another provider answers), so that
    # their unacknowledged data moves to the other subflows at once; needs `recreate`.
    abort: bool = True
    # Probes a round per provider, whatever the number of peers (the cost per node stays
    # the same from 2 to 40 sites); `probe_all` sends every probe every round instead.
    probes_per_round: int = 2
    probe_all: bool = False
    # A provider is down after max(down_after, rtt_factor x (srtt + 4 rttvar)) seconds
    # without an answer, at most down_after_max (see tracker.Tracker).
    rtt_factor: float = 2.0
    down_after_max: float = 3.0

    def probes(self) -> list[Probe]:
        return [probe for provider in self.providers.values() for probe in provider.probes]


def _address(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(str(text).split("/")[0]))
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def from_dict(data: dict) -> Config:
    providers: dict[str, Provider] = {}
    for entry in data.get("providers", []):
        name = entry["name"]
        provider = providers.setdefault(name, Provider(name))
        for probe in entry.get("probes", []):
            source = _address(probe["source"], f"{name} probe source")
            target = _address(probe["target"], f"{name} probe target")
            if ipaddress.ip_address(source).version != ipaddress.ip_address(target).version:
                raise ConfigError(f"{name}: probe from {source} to {target} mixes IPv4 and IPv6")
            provider.probes.append(Probe(name, source, target, str(probe.get("peer", ""))))
        provider.devices.extend(entry.get("devices", []))
        provider.addresses.update(_address(a, f"{name} address") for a in entry.get("addresses", []))
    for provider in providers.values():
        if not provider.probes:
            raise ConfigError(f"provider {provider.name} has no probes")
        if not provider.addresses:
            provider.addresses = {probe.source for probe in provider.probes}
    if not providers:
        raise ConfigError("no providers to watch")
    config = Config(
        providers,
        float(data.get("interval", 0.2)),
        float(data.get("down_after", 0.6)),
        bool(data.get("recreate", True)),
        float(data.get("give_up", 0.0)),
        bool(data.get("abort", True)),
        int(data.get("probes_per_round", 2)),
        bool(data.get("probe_all", False)),
        float(data.get("rtt_factor", 2.0)),
        float(data.get("down_after_max", max(3.0, float(data.get("down_after", 0.6))))),
    )
    if config.interval <= 0 or config.down_after <= config.interval:
        raise ConfigError("interval must be positive and down_after longer than one interval")
    if config.probes_per_round < 1:
        raise ConfigError("probes_per_round must be at least 1")
    if config.rtt_factor < 0 or config.down_after_max < config.down_after:
        raise ConfigError("rtt_factor must not be negative, nor down_after_max shorter than down_after")
    return config


def load(path: Path) -> Config:
    try:
        return from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_probe(text: str) -> tuple[str, str, str, str]:
    """`PROVIDER,SOURCE,TARGET[,PEER]` from the command line (PEER: default the target)."""
    parts = text.split(",")
    if len(parts) not in (3, 4):
        raise ConfigError(f"--probe wants PROVIDER,SOURCE,TARGET[,PEER], not {text!r}")
    return parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else ""
