"""Delay, jitter and loss on the testbed's access links without netem.

The kernel holds each packet in an NFQUEUE; this package only decides when (and whether)
to let it go, and says so with one batch verdict per link and wake-up. No payload crosses
into userspace (metadata copy mode), so the per-packet cost is one small netlink message.

- `schedule`: pure release-time logic per link (delay, jitter without reordering, loss).
- `nfqueue`: the nfnetlink queue messages (encode/decode, no sockets) and a thin socket.
- `runner`: the event loop of one emulator process, serving every queue of a router.
"""
