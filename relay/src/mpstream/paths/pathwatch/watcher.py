"""The watcher's I/O loop: ICMP echo probes, rtnetlink events, endpoint re-creation."""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import struct
import time
from pathlib import Path

from mpstream.paths.pathwatch import echoes, icmp, mptcp_events, netlink_events, sockets, subflows
from mpstream.paths.pathwatch.config import Config
from mpstream.paths.pathwatch.mptcp_pm import FLAG_SIGNAL, FLAG_SUBFLOW, Endpoint, EndpointsLeftOut
from mpstream.paths.pathwatch.schedule import Rotation
from mpstream.paths.pathwatch.tracker import DOWN, Tracker, Transition

log = logging.getLogger("mpstream.pathwatch")

# Where peers open the subflows, a returned provider is re-announced no sooner than this
# many of its round trips after it settled: a peer sees the return up to one round trip
# after this node, and its join is established here 1.5 round trips after it sends it.
# Three probe rounds alone were too short from 280 ms up: the relay re-announced in every run.
PEERS_REJOIN_RTTS = 2.0


def _open_subflows_only(endpoints: list[Endpoint] | None) -> bool:
    """Endpoints that open subflows (`subflow`) and none that is announced (`signal`)."""
    return bool(endpoints) and all(ep.flags & FLAG_SUBFLOW and not ep.flags & FLAG_SIGNAL for ep in endpoints)


# Raw ICMP sockets see every ICMP message to their address (the peers' own probes among
# them): the kernel drops all but echo replies before they reach us.
_ICMP_FILTER = 1  # SOL_RAW option: bit set = type blocked (types 0-31)
_ICMP6_FILTER = 1  # IPPROTO_ICMPV6 option: 256-bit mask, bit set = type blocked
_SOL_RAW = 255
# The kernel's receive time of each reply (SOL_SOCKET ancillary data, a struct timespec of
# CLOCK_REALTIME): a round trip is measured up to the reply's arrival, not to the moment a
# busy CPU let the watcher read it. Linux's numbers (no name in Python's socket module).
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("=qq")  # tv_sec, tv_nsec (64-bit)
_ANCILLARY_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)


def queued_for(ancillary: list[tuple[int, int, bytes]], wall_now: float) -> float:
    """Seconds a datagram waited in the socket before it was read: `wall_now` (time.time())
    less its kernel receive time from `ancillary` (recvmsg's); 0 without one, or where the
    clock has stepped back since."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return max(0.0, wall_now - (seconds + nanoseconds / 1e9))
    return 0.0


def _echo_replies_only(sock: socket.socket, version: int) -> None:
    try:
        if version == 4:
            sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", 0xFFFFFFFF & ~(1 << icmp.ECHO_REPLY[4])))
        else:
            words = [0xFFFFFFFF] * 8
            reply = icmp.ECHO_REPLY[6]
            words[reply >> 5] &= ~(1 << (reply & 31))
            sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *words))
    except OSError as exc:  # only a cost: replies are matched anyway
        log.debug("no ICMP filter: %s", exc)


class ProbeSocket:
    """One raw ICMP socket per source address, bound to it (so policy routing sends its
    probes out through the provider), whatever the number of targets it probes."""

    def __init__(self, provider: str, source: str, version: int, ident: int) -> None:
        self.provider, self.source, self.version, self.ident = provider, source, version, ident
        self.ledger = echoes.Ledger()
        if version == 4:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        else:
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        _echo_replies_only(self.sock, version)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError as exc:  # then a reply counts from when it is read, as without this
            log.debug("no receive timestamps: %s", exc)
        self.sock.setblocking(False)
        self.sock.bind((source, 0))

    def send(self, target: str, now: float) -> None:
        """Send an echo request to `target`; `now`: the time it goes out, on the watcher's clock."""
        seq = self.ledger.sent(target, now)
        try:
            self.sock.sendto(icmp.echo_request(self.version, self.ident, seq), (target, 0))
        except OSError as exc:  # no route, address gone: the provider is as good as down
            log.debug("probe %s -> %s not sent: %s", self.source, target, exc)

    def replies(self, clock) -> list[tuple[str, float, float]]:
        """Drain the socket: (target, sent at, answered at) of our probes answered; answered
        at: when the reply reached this node's kernel, on `clock`."""
        answered = []
        while True:
            try:
                packet, ancillary, _flags, sender = self.sock.recvmsg(2048, _ANCILLARY_SPACE)
            except OSError:  # BlockingIOError (drained), InterruptedError, or an error report
                return answered
            reply = icmp.parse_echo_reply(self.version, packet)
            if reply and reply[0] == self.ident:
                probe = self.ledger.answered(reply[1], sender[0])
                if probe:
                    arrived = clock() - queued_for(ancillary, time.time())
                    answered.append((probe[0], probe[1], max(arrived, probe[1])))

    def close(self) -> None:
        self.sock.close()


class Watcher:
    def __init__(self, config: Config, events_file: Path | None = None, clock=time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.tracker = Tracker(
            list(config.providers), config.down_after, clock(), config.rtt_factor, config.down_after_max
        )
        base = (os.getpid() << 4) & 0xFFFF
        sources = sorted({(p.provider, p.source, p.version) for p in config.probes()})
        self.probes: list[ProbeSocket] = []
        try:
            for i, (provider, source, version) in enumerate(sources):
                self.probes.append(ProbeSocket(provider, source, version, (base + i) & 0xFFFF))
        except OSError:
            for probe in self.probes:
                probe.close()
            raise
        self.socket_of = {(p.provider, p.source): p for p in self.probes}
        per_round = None if config.probe_all else config.probes_per_round
        self.rotations = {name: Rotation(p.probes, per_round) for name, p in config.providers.items()}
        self.device_provider = {dev: p.name for p in config.providers.values() for dev in p.devices}
        self.ifnames: dict[int, str] = {}
        self.netlink = self._open_netlink()
        try:
            self.mptcp, self.mptcp_family = mptcp_events.open_socket()
        except OSError as exc:
            log.warning("no MPTCP events (%s)", exc)
            self.mptcp, self.mptcp_family = None, None
        self.events_file = open(events_file, "a", buffering=1) if events_file else None  # noqa: SIM115
        self._pm = None
        self._diag: subflows.SockDiag | None = None
        # Endpoints taken away while their provider is down, to be added back on its return.
        self.withdrawn: dict[str, list[Endpoint]] = {}
        # Down providers whose abort kept subflows (for want of a working path, as when a
        # provider fails as another returns, or as a peer address's only path), with the
        # failure's detection time: looked at again whenever a subflow is established.
        self.abort_pending: dict[str, float] = {}
        # Endpoints the kernel refused to add back, after a re-creation removed them
        # (Debian's 6.1 did once) or after a withdrawal: added at every probe round until it
        # takes them. Their removal was announced, so a peer without them may have no path left.
        self.refused: dict[str, list[Endpoint]] = {}
        # Whether the node opens a provider's subflows itself, read once per outage (the
        # loop asks every round while a returned provider settles).
        self._self_reliant: dict[str, bool] = {}
        # Down (or returned, not yet re-created) providers: this node's connections when
        # their failure was seen.
        self.failures: dict[str, subflows.Failure] = {}
        self._stopping = False
        if config.recreate:
            self._pm_open()  # now, not when a provider returns: opening takes a quarter second

    def _pm_open(self):
        from mpstream.paths.pathwatch.mptcp_pm import PmClient as PathManager

        if self._pm is None:
            try:
                self._pm = PathManager()
            except Exception as exc:  # noqa: BLE001 - retried at the next re-creation
                log.error("no MPTCP path manager (%s): is MPTCP enabled in this kernel?", exc)
        return self._pm

    def _open_netlink(self) -> socket.socket | None:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            sock.bind((0, netlink_events.GROUPS))
            sock.setblocking(False)
        except OSError as exc:
            log.warning("no netlink events (%s): relying on probes alone", exc)
            return None
        for index, name in socket.if_nameindex():
            self.ifnames[index] = name
        return sock

    def close(self) -> None:
        # The node keeps its configured endpoints whatever state the watcher stops in.
        for provider in list(self.withdrawn):
            self.restore(provider)
        if self.refused:
            self.add_refused()
        for probe in self.probes:
            probe.close()
        for sock in (self.netlink, self.mptcp):
            if sock:
                sock.close()
        if self._pm:
            self._pm.close()
        if self._diag:
            self._diag.close()
        if self.events_file:
            self.events_file.close()

    def record(self, event: str, **fields) -> None:
        if self.events_file:
            self.events_file.write(json.dumps({"time": time.time(), "event": event, **fields}) + "\n")

    def request_stop(self) -> None:
        """Stop after the round in progress (safe from a signal handler)."""
        self._stopping = True

    def run(self, duration: float | None = None) -> None:
        started = self.clock()
        next_probe = started
        self.tracker.restart(started)
        log.info(
            "watching %s every %.2f s (down after %.2f s of silence or %.1f x srtt + 4 rttvar, at most %.2f s), "
            "re-create endpoints: %s",
            ", ".join(
                f"{p.name} ({len(p.probes)} probes, {self.rotations[p.name].size} a round)"
                for p in self.config.providers.values()
            ),
            self.config.interval,
            self.config.down_after,
            self.config.rtt_factor,
            self.config.down_after_max,
            "yes" if self.config.recreate else "no",
        )
        while not self._stopping and (duration is None or self.clock() - started < duration):
            now = self.clock()
            if now >= next_probe:
                self._probe_round(now)
                if self.refused:
                    self.add_refused()
                next_probe = max(next_probe + self.config.interval, now)
            readable = [p.sock for p in self.probes] + [s for s in (self.netlink, self.mptcp) if s]
            timeout = max(0.0, min(next_probe - self.clock(), 0.05))
            ready, _, _ = select.select(readable, [], [], timeout)
            now = self.clock()
            transitions: list[Transition] = []
            for probe in self.probes:
                if probe.sock in ready:
                    for target, sent, answered in probe.replies(self.clock):
                        transitions += self.tracker.reply(probe.provider, answered, target, answered - sent)
            if self.netlink in ready:
                transitions += self._netlink(now)
            joined = self.mptcp in ready and self._mptcp_events()
            transitions += self.tracker.tick(now)
            for transition in transitions:
                self.handle(transition)
                if transition.new == DOWN and self.config.recreate:
                    self._self_reliant.pop(transition.provider, None)
                    self.withdraw(transition.provider, now)
                    cut, listed = self.abort(transition.provider, now) if self.config.abort else (set(), None)
                    self.note_failure(transition.provider, now, cut, listed)
            if joined:
                self._abort_pending()
            if self.config.recreate:
                interval = self.config.interval
                settle = 3 * interval  # long enough for a provider failing right now to look silent
                due, dropped = self.tracker.due(
                    now,
                    settle=settle,
                    fresh=1.5 * interval,
                    give_up=max(settle, self.config.give_up),
                    expendable=self.without_subflows,
                    self_reliant=self.opens_own_subflows,
                    rejoin_rtts=PEERS_REJOIN_RTTS,
                )
                for provider in due:
                    self.recreate(provider)
                for provider in dropped:
                    if self.served(provider, self.failures.pop(provider, None)):
                        self._left_working(provider)  # the peers re-joined it (phase 3 of the paper)
                        continue
                    log.warning(
                        "%s: back while no other provider answers; its subflows are the only path, "
                        "left to their retransmission timers",
                        provider,
                    )
                    self.record("recreate_skipped", provider=provider)

    def _probe_round(self, now: float) -> None:
        for provider, rotation in self.rotations.items():
            for probe in rotation.round(self.tracker.anchor(provider, now)):
                sent = self.clock()  # one time for the round trip and for the lateness alike
                self.socket_of[(provider, probe.source)].send(probe.target, sent)
                self.tracker.sent(provider, probe.target, sent, probe.peer)

    def _netlink(self, now: float) -> list[Transition]:
        transitions = []
        try:
            while True:
                datagram = self.netlink.recv(65536)
                for event in netlink_events.parse(datagram):
                    if isinstance(event, netlink_events.LinkEvent):
                        if event.name:
                            self.ifnames[event.index] = event.name
                        name = self.ifnames.get(event.index)
                        provider = self.device_provider.get(name)
                        if provider:
                            log.debug("link %s carrier %s", name, event.carrier)
                            transitions += self.tracker.link(provider, name, event.carrier, now)
                    else:
                        provider = self.device_provider.get(self.ifnames.get(event.index))
                        if provider:
                            change = "removed" if event.removed else "added"
                            log.info("%s: address %s on %s", provider, change, self.ifnames.get(event.index))
        except (BlockingIOError, InterruptedError):
            pass
        return transitions

    def without_subflows(self, provider: str) -> bool:
        """No established TCP socket (MPTCP subflow or other) uses one of the provider's addresses."""
        return not (self.config.providers[provider].addresses & sockets.local_addresses_in_use())

    def _endpoints_of(self, provider: str) -> list[Endpoint] | None:
        pm = self._pm_open()
        if pm is None:
            return None
        try:
            return [ep for ep in pm.endpoints() if ep.address in self.config.providers[provider].addresses]
        except Exception as exc:  # noqa: BLE001 - decided again at the next change
            log.error("reading MPTCP endpoints failed: %s", exc)
            return None

    def opens_own_subflows(self, provider: str) -> bool:
        """This node's endpoints on the provider open subflows and announce nothing."""
        if provider not in self._self_reliant:
            endpoints = self.withdrawn.get(provider) or self._endpoints_of(provider)
            if endpoints is None:
                return False  # could not read them: asked again next round
            self._self_reliant[provider] = _open_subflows_only(endpoints)
        return self._self_reliant[provider]

    def _subflows(self) -> list[subflows.Subflow]:
        """This node's MPTCP subflows; OSError and the like from sock_diag pass up."""
        if self._diag is None:
            self._diag = subflows.SockDiag()
        return self._diag.subflows()

    def note_failure(self, provider: str, now: float, cut: set[int],
                     listed: list[subflows.Subflow] | None = None) -> None:
        """Which connections use the provider's addresses as it fails: those with subflows
        from them still, and those whose subflows over it the abort has just `cut`. On its
        return, those are the ones to serve. Read after the withdrawal and the abort, which
        must not wait for it; the abort's own listing (`listed`, made after the withdrawal)
        serves, as what it aborted is in `cut`: one sock_diag dump less at a failure. Not
        for withdrawn endpoints: they are added back regardless."""
        self.failures.pop(provider, None)
        if provider in self.withdrawn:
            return
        try:
            found = self._subflows() if listed is None else listed
        except Exception as exc:  # noqa: BLE001 - then its return re-creates, as without this
            log.error("%s: listing MPTCP subflows failed: %s", provider, exc)
            return
        self.failures[provider] = subflows.failure_seen(found, self.config.providers[provider].addresses, now, cut)

    def served(self, provider: str, failure: subflows.Failure | None) -> bool:
        """Whether every connection that used the returned provider here (or began since it
        failed) has a working subflow from its addresses again: re-joined over it by the peer,
        or never cut (a false alarm). Re-creating would close those subflows for nothing."""
        if failure is None or not failure.over_provider:
            return False  # nothing known, or nothing used it: re-created as it always was
        try:
            found = self._subflows()
        except Exception as exc:  # noqa: BLE001 - re-created, as without this
            log.error("%s: listing MPTCP subflows failed: %s", provider, exc)
            return False
        return not subflows.unserved(found, self.config.providers[provider].addresses, failure, self.clock())

    def withdraw(self, provider: str, now: float) -> None:
        """Take a failed provider's `subflow` endpoints away while another provider answers.

        The kernel closes their subflows and at once sends the data still unacknowledged
        on them over the others (and tells the peer, which does the same for its side),
        instead of waiting for retransmission timeouts to find them stale. Endpoints that
        are announced (`signal`) stay: the peer would forget the address, and with it the
        only way to reach it again if this provider comes back alone. So do endpoints
        whose subflows are the only ones towards some peer address (no path crosses
        between providers), for the same reason on this side.
        """
        if provider in self.withdrawn or not self.tracker.others_answer(provider, now, self.config.down_after):
            return
        endpoints = self._endpoints_of(provider)
        if not _open_subflows_only(endpoints):
            return
        stranded = sockets.peers_reached_only_from(self.config.providers[provider].addresses)
        if stranded:
            # Without another subflow towards them, the kernel could not find these peer
            # addresses again on the provider's return: its backed-off subflows stay.
            log.info("%s: endpoints kept, only its subflows reach %s", provider, ", ".join(sorted(stranded)))
            self.record("withdraw_skipped", provider=provider, peers=sorted(stranded))
            return
        try:
            for endpoint in endpoints:
                self._pm.delete(endpoint)
        except Exception as exc:  # noqa: BLE001 - the kernel's timers remain
            log.error("%s: withdrawing endpoints failed: %s", provider, exc)
        self.withdrawn[provider] = endpoints
        listed = ", ".join(f"{ep.id} ({ep.address})" for ep in endpoints)
        took = self.clock() - now
        log.info("%s: withdrew MPTCP endpoints %s %.0f ms after the failure was seen; their data goes over "
                 "the other providers", provider, listed, took * 1000)
        # seconds: from the failure's detection to the endpoints gone (the watcher's reaction).
        self.record("withdraw", provider=provider, endpoints=[ep.id for ep in endpoints], seconds=took)

    def abort(self, provider: str, now: float, again: bool = False) -> set[int]:
        """Abort the failed provider's MPTCP subflows that its endpoints did not take along.

        Those are the subflows of announced (`signal`) endpoints, of endpoints kept because
        their subflows alone reach some peer address, and, where paths cross providers, the
        subflows from this node's other addresses towards the peers' addresses on the failed
        provider (withdrawn endpoints take only their own subflows along): data sent on them
        just before the failure, or given to them after it, would otherwise wait for their
        retransmission timers, and the whole connection behind it (a hole in the stream the
        receiver cannot skip). Only while another provider answers, only MPTCP subflows
        (never another TCP connection), only where the connection keeps a subflow on a
        provider that is not down, and not where that would lose a peer address (see
        `subflows.abortable`). What that keeps is looked at `again` when a subflow is
        established (see `_abort_pending`); `now` is the failure's detection. Returns the
        connections (tokens) whose subflows from the provider's addresses it aborted, and
        the subflows it listed before (None: it listed none).
        """
        if not self.tracker.others_answer(provider, self.clock(), self.config.down_after):
            self.abort_pending[provider] = now
            return set(), None
        try:
            found = self._subflows()
        except Exception as exc:  # noqa: BLE001 - the kernel's timers remain
            log.error("%s: listing MPTCP subflows failed: %s", provider, exc)
            return set(), None
        down = {
            address
            for name, entry in self.config.providers.items()
            if self.tracker.state(name) == DOWN
            for address in entry.addresses | entry.peer_addresses
        }
        entry = self.config.providers[provider]
        candidates = found
        if provider in self.withdrawn:  # the kernel closed the subflows of this node's own addresses
            candidates = [subflow for subflow in found if subflow.local_address not in entry.addresses]
        chosen, kept = subflows.abortable(candidates, entry.addresses | entry.peer_addresses, down)
        if kept:
            self.abort_pending[provider] = now
        else:
            self.abort_pending.pop(provider, None)
        aborted, cut = [], set()
        for subflow in chosen:
            try:
                self._diag.abort(subflow)
                aborted.append(subflow.describe())
                if subflow.local_address in entry.addresses:
                    cut.add(subflow.token)
            except OSError as exc:  # gone meanwhile (ENOENT), or no CONFIG_INET_DIAG_DESTROY
                log.warning("%s: aborting subflow %s failed: %s", provider, subflow.describe(), exc.strerror)
        if aborted or (kept and not again):
            log.info(
                "%s: aborted %d MPTCP subflows, their data goes over the other providers; kept %d "
                "(their connection's or a peer address's only path)",
                provider,
                len(aborted),
                len(kept),
            )
            self.record("abort", provider=provider, subflows=aborted, kept=[s.describe() for s in kept],
                        seconds=self.clock() - now)
        return cut, found

    def restore(self, provider: str) -> list[Endpoint]:
        """Add a provider's withdrawn endpoints back (subflows follow, the kernel opens them)."""
        pm = self._pm_open()
        if pm is None:
            return []
        endpoints = self.withdrawn.pop(provider, [])
        refused = pm.add_all(endpoints)
        for endpoint, exc in refused:
            log.error("%s: adding endpoint %s (%s) back failed: %s", provider, endpoint.id, endpoint.address, exc)
        if refused:
            self.refused[provider] = [endpoint for endpoint, _ in refused]
        return endpoints

    def add_refused(self) -> None:
        """Try again to add the endpoints the kernel refused to add back."""
        pm = self._pm_open()
        if pm is None:
            return
        for provider, endpoints in list(self.refused.items()):
            left = [endpoint for endpoint, _ in pm.add_all(endpoints)]
            if left:
                self.refused[provider] = left
                continue
            del self.refused[provider]
            listed = ", ".join(f"{ep.id} ({ep.address})" for ep in endpoints)
            log.info("%s: added back MPTCP endpoints %s that the kernel had refused", provider, listed)
            self.record("readded", provider=provider, endpoints=[ep.id for ep in endpoints])

    def _mptcp_events(self) -> bool:
        """Log and record the kernel's MPTCP events; whether a subflow was established."""
        joined = False
        try:
            while True:
                for event in mptcp_events.parse(self.mptcp.recv(65536), self.mptcp_family):
                    level = (
                        logging.INFO
                        if event.kind.startswith("sub_") or event.kind in ("announced", "removed")
                        else logging.DEBUG
                    )
                    log.log(level, "%s", event.describe())
                    self.record(
                        "mptcp",
                        kind=event.kind,
                        token=event.token,
                        saddr=event.saddr,
                        daddr=event.daddr,
                        sport=event.sport,
                        dport=event.dport,
                        error=event.error,
                    )
                    joined = joined or event.kind == "sub_established"
        except (BlockingIOError, InterruptedError):
            pass
        return joined

    def _abort_pending(self) -> None:
        """Abort again what a down provider's abort kept for want of a working path, now
        that a subflow is up: a provider that fails as another returns leaves its data on
        dead subflows until the returning one's subflows are back."""
        for provider, detected in list(self.abort_pending.items()):
            if self.tracker.state(provider) == DOWN:
                self.abort(provider, detected, again=True)
            else:
                del self.abort_pending[provider]

    def handle(self, transition: Transition) -> None:
        if transition.new == DOWN:
            log.warning("%s down (%s)", transition.provider, transition.reason)
        else:
            after = f" after {transition.outage:.2f} s" if transition.outage is not None else ""
            log.info("%s up (%s)%s", transition.provider, transition.reason, after)
        self.record(
            "provider",
            provider=transition.provider,
            old=transition.old,
            new=transition.new,
            reason=transition.reason,
            outage=transition.outage,
            srtt=self.tracker.srtt(transition.provider),
            threshold=self.tracker.threshold(transition.provider),
        )

    def _left_working(self, provider: str) -> None:
        log.info("%s: back; every connection that used it has a working subflow over it, left as they are", provider)
        self.record("recreate_skipped", provider=provider, reason="subflows working")

    def recreate(self, provider: str) -> None:
        addresses = self.config.providers[provider].addresses
        failure = self.failures.pop(provider, None)
        if provider not in self.withdrawn and self.opens_own_subflows(provider):
            # Re-creating closes the provider's subflows, and the kernel opens new ones only
            # towards peer addresses that other subflows use: one that only these reach would
            # be lost. Those backed-off subflows resume by their own timers instead.
            stranded = sockets.peers_reached_only_from(addresses)
            if stranded:
                log.info(
                    "%s: back; its subflows alone reach %s, left to resume by their timers",
                    provider,
                    ", ".join(sorted(stranded)),
                )
                self.record("recreate_skipped", provider=provider, peers=sorted(stranded))
                return
        if provider not in self.withdrawn and self.served(provider, failure):
            self._left_working(provider)
            return
        started = self.clock()
        try:
            pm = self._pm_open()
            if pm is None:
                raise RuntimeError("no path manager")
            done = self.restore(provider) if provider in self.withdrawn else pm.recreate(addresses)
        except Exception as exc:  # noqa: BLE001 - a failed re-creation must not stop the watching
            log.error("%s: re-creating endpoints failed: %s", provider, exc)
            self.record("recreate_failed", provider=provider, error=str(exc))
            if isinstance(exc, EndpointsLeftOut):
                self.refused[provider] = exc.endpoints
            if self._pm is not None:
                self._pm.close()
            self._pm = None
            return
        took = self.clock() - started
        listed = ", ".join(f"{ep.id} ({ep.address})" for ep in done) or "none found"
        log.info("%s: re-created MPTCP endpoints %s in %.1f ms", provider, listed, took * 1000)
        self.record("recreate", provider=provider, endpoints=[ep.id for ep in done], seconds=took)
