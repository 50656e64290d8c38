"""Path watcher: learn fast when a provider goes away or comes back, and re-create its subflows.

Upstream MPTCP does not re-create a subflow that died while its provider was down, and
subflows that sat through an outage in exponential RTO backoff are only used again when
their timers fire. The watcher probes every provider path actively (ICMP echo from its
local addresses to the peers' addresses over the same provider, a few probes a round
whatever the number of peers, ten rounds a second: an outage can be a silent blackhole
without any link event; the silence that means "down" follows the measured round-trip
time), listens to link and address events over netlink, and when a provider comes back
removes and re-adds that provider's MPTCP endpoints, which makes the kernel open (or
announce) that provider's subflows of every live connection again.

It does so only while another provider answers: removing an endpoint also removes the
subflows on it, and the announcements that bring them back travel over the remaining
paths. A provider that returns just as the other one fails (phase 3 of the paper) is
left to its subflows' retransmission timers, which `net.ipv4.tcp_rto_max_ms` bounds
(the mptcp_kernel role sets it to 1 s).

When a provider fails while another answers, the watcher withdraws its `subflow`
endpoints where it safely can and aborts the provider's remaining MPTCP subflows, so
that the data unacknowledged on them moves to the other subflows at once instead of
holding up the whole connection until their timers give up.

Modules: `tracker` (pure: probes and answers in, provider transitions out), `rtt`
(smoothed round-trip time, pure), `schedule` (which probes a round, pure), `echoes`
(requests in flight, pure), `icmp` (echo packets, pure), `netlink_events` (pure parsing of link/address notifications),
`endpoints` (the kernel's MPTCP endpoints), `subflows` (listing and aborting subflows
over sock_diag), `sockets` (addresses in use, from sock_diag), `watcher` (the I/O
loop), `command` (CLI).
"""
