"""Errors the protocol code raises; the I/O layer closes the connection on any of them."""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer sent something RTMP does not allow; the connection cannot continue."""


class LimitExceeded(ProtocolError):
    """The peer is within the protocol but beyond a configured limit (see `Limits`)."""


class AMFError(ProtocolError):
    """An AMF0/AMF3 value that does not decode."""
