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

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.source).version


@dataclass
class Provider:
    name: str
    probes: list[Probe] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    addresses: set[str] = field(default_factory=set)  # endpoints to re-create; default: probe sources


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
            provider.probes.append(Probe(name, source, target))
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
    )
    if config.interval <= 0 or config.down_after <= config.interval:
        raise ConfigError("interval must be positive and down_after longer than one interval")
    return config


def load(path: Path) -> Config:
    try:
        return from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_probe(text: str) -> tuple[str, str, str]:
    """`PROVIDER,SOURCE,TARGET` from the command line."""
    parts = text.split(",")
    if len(parts) != 3:
        raise ConfigError(f"--probe wants PROVIDER,SOURCE,TARGET, not {text!r}")
    return parts[0], parts[1], parts[2]
