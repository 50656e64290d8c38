"""FLV: the container RTMP carries, as pure functions over bytes (no I/O).

An RTMP audio/video message body is exactly an FLV tag body, so the relay, the
publisher and the player all classify media with the helpers here, and the
publisher reads files through `read_tags`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18

FILE_HEADER_SIZE = 9
TAG_HEADER_SIZE = 11

# Video tag body, first byte: frame type (high nibble), codec id (low nibble).
FRAME_KEY = 1
FRAME_INTER = 2
FRAME_DISPOSABLE = 3
FRAME_GENERATED_KEY = 4
FRAME_INFO = 5
CODEC_AVC = 7
CODEC_HEVC_LEGACY = 12  # the widespread non-standard id for HEVC in FLV
# Enhanced RTMP sets the high bit of the first byte and carries a FourCC.
VIDEO_EX_HEADER = 0x80

# Audio tag body, first byte: sound format (high nibble).
SOUND_AAC = 10

AVC_SEQUENCE_HEADER = 0
AAC_SEQUENCE_HEADER = 0


class FLVError(ValueError):
    """The bytes are not a well-formed FLV file or tag."""


@dataclass(frozen=True)
class Tag:
    """One FLV tag: its type, timestamp in milliseconds and body."""

    type: int
    timestamp: int
    body: bytes


def is_keyframe(video_body: bytes) -> bool:
    """A video body whose frame is a keyframe (sequence headers are keyframes too)."""
    if not video_body:
        return False
    frame_type = (video_body[0] >> 4) & 0x07 if video_body[0] & VIDEO_EX_HEADER else video_body[0] >> 4
    return frame_type in (FRAME_KEY, FRAME_GENERATED_KEY)


def is_video_sequence_header(video_body: bytes) -> bool:
    """AVC/HEVC decoder configuration (what a decoder needs before the first frame)."""
    if len(video_body) < 2:
        return False
    first = video_body[0]
    if first & VIDEO_EX_HEADER:
        return first & 0x0F == 0  # Enhanced RTMP PacketTypeSequenceStart
    return first & 0x0F in (CODEC_AVC, CODEC_HEVC_LEGACY) and video_body[1] == AVC_SEQUENCE_HEADER


def is_audio_sequence_header(audio_body: bytes) -> bool:
    """AAC AudioSpecificConfig."""
    return len(audio_body) >= 2 and audio_body[0] >> 4 == SOUND_AAC and audio_body[1] == AAC_SEQUENCE_HEADER


def file_header(has_audio: bool = True, has_video: bool = True) -> bytes:
    """The 9-byte FLV file header followed by PreviousTagSize0."""
    flags = (0x04 if has_audio else 0) | (0x01 if has_video else 0)
    return b"FLV\x01" + bytes([flags]) + struct.pack(">I", FILE_HEADER_SIZE) + b"\x00\x00\x00\x00"


def encode_tag(tag: Tag) -> bytes:
    """One tag with its header and trailing PreviousTagSize."""
    size = len(tag.body)
    if size >= 1 << 24:
        raise FLVError(f"tag body of {size} bytes does not fit FLV's 24-bit size")
    ts = tag.timestamp & 0xFFFFFFFF
    header = struct.pack(">B", tag.type) + size.to_bytes(3, "big")
    header += (ts & 0xFFFFFF).to_bytes(3, "big") + bytes([ts >> 24]) + b"\x00\x00\x00"
    return header + tag.body + struct.pack(">I", TAG_HEADER_SIZE + size)


def read_tags(data: bytes) -> Iterator[Tag]:
    """The tags of a whole FLV file in memory; a truncated last tag is dropped."""
    if len(data) < FILE_HEADER_SIZE or data[:3] != b"FLV":
        raise FLVError("not an FLV file (no 'FLV' signature)")
    offset = struct.unpack(">I", data[5:9])[0] + 4
    while offset + TAG_HEADER_SIZE <= len(data):
        tag_type = data[offset] & 0x1F
        size = int.from_bytes(data[offset + 1:offset + 4], "big")
        ts = int.from_bytes(data[offset + 4:offset + 7], "big") | data[offset + 7] << 24
        body_start = offset + TAG_HEADER_SIZE
        body_end = body_start + size
        if body_end > len(data):
            return
        yield Tag(tag_type, ts, bytes(data[body_start:body_end]))
        offset = body_end + 4
