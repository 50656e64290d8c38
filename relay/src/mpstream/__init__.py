"""mpstream: live RTMP video over multi-homed IPv6/MPTCP networks."""

__version__ = "0.1.0"
