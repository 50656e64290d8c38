"""Bounds on what a peer may make us hold in memory or spend CPU on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Per-connection protocol limits; a peer beyond any of them raises `LimitExceeded`.

    `min_chunk_size` is above the protocol's 1 because a tiny chunk size turns every
    payload byte into a chunk header to parse: no real encoder goes below 128.
    `max_buffered_bytes` bounds all partial messages of a connection together (a peer
    can otherwise start an unfinished large message on every chunk stream).
    `max_aggregate_messages` bounds the sub-messages of one aggregate message (each one
    costs as much to handle as a message of its own).
    """

    min_chunk_size: int = 64
    max_chunk_size: int = 1 << 20
    max_message_size: int = 8 << 20
    max_chunk_streams: int = 64
    max_amf_depth: int = 32
    max_streams: int = 16  # message streams a client may create with createStream
    max_buffered_bytes: int = 12 << 20
    max_aggregate_messages: int = 256
    max_name_length: int = 256  # app and stream names, in characters

    def __post_init__(self) -> None:
        if not 1 <= self.min_chunk_size <= self.max_chunk_size <= 0x7FFFFFFF:
            raise ValueError("need 1 <= min_chunk_size <= max_chunk_size <= 2^31-1")
        if not 1 <= self.max_message_size < 1 << 24:
            raise ValueError("max_message_size must fit RTMP's 24-bit length")
        if not 1 <= self.max_chunk_streams <= 65599:
            raise ValueError("max_chunk_streams out of range")
        if self.max_buffered_bytes < self.max_message_size:
            raise ValueError("max_buffered_bytes must hold at least one message of max_message_size")
        if self.max_aggregate_messages < 1 or self.max_name_length < 1:
            raise ValueError("max_aggregate_messages and max_name_length must be at least 1")
